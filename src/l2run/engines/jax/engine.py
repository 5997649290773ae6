"""`JaxEngine`: the JAX physics behind the `Engine` protocol, so `RunEnv(engine="jax")` works.

Holds one `EnvState` and calls the jitted pure `step`, fused with the observation and the
reports (body poses, contact and ligament forces) of the new state, so one `RunEnv.step` is one
dispatch of compiled code; the results stay on the device until a reporting method asks.
Needs neither OpenSim nor the JSON model definition: the model comes from the packaged
parameter file.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from l2run.course import Course
from l2run.engines.base import IntegratorError
from l2run.engines.jax import system
from l2run.engines.jax.integrate import Integrator
from l2run.engines.jax.params import ModelParams, load_params
from l2run.engines.jax.state import EnvState
from l2run.engines.jax.step import (
    DEFAULT_INTEGRATOR,
    INTEGRATOR_FAILURE_REWARD,
    first_step_integrator,
    observe,
    parse_integrator,
    reset,
    step,
)
from l2run.engines.jax.xla_options import engine_jit
from l2run.model.names import BODIES, FOOT_CONTACTS, MUSCLES
from l2run.observation import pad_obstacles

DTYPES = {"float64": jnp.float64, "float32": jnp.float32}


def cast_params(params: ModelParams, dtype) -> ModelParams:
    """Floating-point leaves of `params` as `dtype` (integer index arrays unchanged)."""
    return jax.tree.map(
        lambda x: x.astype(dtype) if jnp.issubdtype(x.dtype, jnp.floating) else x, params
    )


_observe = engine_jit(observe)


@engine_jit(static_argnames=("integrator", "first_integrator"))
def _step_and_report(params, state, action, integrator, first_integrator):
    """`step`, and the reports of the new state, in one compiled call."""
    new, obs, reward, done = step(params, state, action, integrator, first_integrator)
    return new, obs, reward, done, system.reports(params, new.q, new.u, new.obstacles)


_reports = engine_jit(system.reports)
_muscle_paths = engine_jit(system.muscle_path_points)


class JaxEngine:
    """The runner simulated by the JAX engine, stepped 0.01 s at a time."""

    name = "jax"

    def __init__(
        self,
        integrator: Integrator | tuple | str = DEFAULT_INTEGRATOR,
        dtype: str = "float64",
        params: ModelParams | None = None,
    ) -> None:
        if dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {tuple(DTYPES)}, got {dtype!r}")
        self.integrator = parse_integrator(integrator)
        self.dtype = DTYPES[dtype]
        self.params = cast_params(params if params is not None else load_params(), self.dtype)
        # Made once: an eager `jnp.zeros` per step costs as much as dispatching the step.
        self._not_done = jnp.zeros((), bool)
        self.course = Course()
        self.state = None
        self.reset(self.course)

    def reset(self, course: Course) -> None:
        self.course = course
        self.state = reset(
            self.params,
            jnp.asarray(pad_obstacles(course.obstacles), self.dtype),
            jnp.asarray(course.psoas, self.dtype),
        )

    def step(self, excitations: np.ndarray) -> None:
        # A host array: the jitted call moves it to the device, cheaper than an eager conversion.
        action = np.clip(np.asarray(excitations, float).reshape(18), 0, 1).astype(self.dtype)
        # A done flag from the pure step (fall / time limit) is RunEnv's business, not ours.
        state = self.state._replace(done=self._not_done)
        new, obs, reward, done, reports = _step_and_report(
            self.params, state, action, self.integrator, first_step_integrator(self.integrator)
        )
        # The pure step keeps the last finite state and flags the failure with RunEnv's reward.
        if bool(done) and float(reward) == INTEGRATOR_FAILURE_REWARD:
            raise IntegratorError(
                f"the state became non-finite integrating to t={float(state.time) + 0.01:.2f} s"
            )
        self.state = new  # clears the caches (the setter below); these are the new state's
        self._obs_cache, self._device_reports = obs, reports

    @property
    def time(self) -> float:
        return float(self.state.time)

    @property
    def state(self) -> EnvState | None:
        """The runner's `EnvState` (setting it, e.g. to restore a saved one, drops the cached
        observation and reports)."""
        return self._state

    @state.setter
    def state(self, value: EnvState | None) -> None:
        self._state = value
        self._obs_cache = self._device_reports = self._report_cache = None
        self._paths_cache: list[np.ndarray] | None = None

    def observation(self) -> np.ndarray:
        if self._obs_cache is None:
            self._obs_cache = _observe(self.params, self.state)
        return np.asarray(self._obs_cache, dtype=np.float64)

    def _reports(self) -> system.Reports:
        if self._report_cache is None:
            if self._device_reports is None:
                s = self.state
                self._device_reports = _reports(self.params, s.q, s.u, s.obstacles)
            self._report_cache = jax.tree.map(np.asarray, self._device_reports)
        return self._report_cache

    def ligament_forces(self) -> np.ndarray:
        return np.asarray(self._reports().ligament_torques, dtype=np.float64)

    def body_poses(self) -> dict[str, tuple[float, float, float]]:
        r = self._reports()
        return {
            name: (float(r.body_origin[i, 0]), float(r.body_origin[i, 1]), float(r.body_angle[i]))
            for i, name in enumerate(BODIES)
        }

    def muscle_paths(self) -> list[np.ndarray]:
        # Cached per state: a recording and a live viewer both draw every step.
        if self._paths_cache is None:
            points, mask = (np.asarray(a) for a in _muscle_paths(self.params, self.state.q))
            self._paths_cache = [
                np.asarray(points[i][mask[i]], dtype=np.float64) for i in range(len(MUSCLES))
            ]
        return [p.copy() for p in self._paths_cache]

    def activations(self) -> np.ndarray:
        return np.asarray(self.state.activation, dtype=np.float64)

    def fiber_lengths(self) -> np.ndarray:
        return np.asarray(self.state.fiber_length, dtype=np.float64)

    def contact_forces(self) -> dict[str, np.ndarray]:
        r = self._reports()
        return {
            name: np.asarray(r.foot_forces[i], dtype=np.float64)
            for i, name in enumerate(FOOT_CONTACTS)
        }
