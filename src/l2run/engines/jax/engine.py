"""`JaxEngine`: the JAX physics behind the `Engine` protocol, so `RunEnv(engine="jax")` works.

Holds one `EnvState` and calls the jitted pure `step`, fused with the observation and the
reports (body poses, contact and ligament forces) of the new state, so one `RunEnv.step` is one
dispatch of compiled code and one transfer to the host: everything the reporting methods give
comes back packed in one vector (`SNAPSHOT_FIELDS`). The host picks the substeps (an episode's
first step, and a redo of a non-finite step, take the first-step scheme's), so the compiled
program holds one copy of the scheme: `step.step`'s `lax.cond` holds two, and XLA's CPU runtime
books every buffer of a program on every call (~1.1x per step).
Needs neither OpenSim nor the JSON model definition: the model comes from the packaged
parameter file.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from l2run.course import Course
from l2run.engines.base import STEP_SIZE_S, IntegratorError
from l2run.engines.jax import system
from l2run.engines.jax.integrate import Integrator, SubstepPlan, substep_plan
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
    step_with_plan,
)
from l2run.engines.jax.xla_options import engine_jit
from l2run.model.names import BODIES, FOOT_CONTACTS, LIGAMENTS, MUSCLES
from l2run.observation import OBSERVATION_SIZE, pad_obstacles

DTYPES = {"float64": jnp.float64, "float32": jnp.float32}


def cast_params(params: ModelParams, dtype) -> ModelParams:
    """Floating-point leaves of `params` as `dtype` (integer index arrays unchanged)."""
    return jax.tree.map(
        lambda x: x.astype(dtype) if jnp.issubdtype(x.dtype, jnp.floating) else x, params
    )


# What one step hands to the host, packed into one vector (name, shape): a transfer per
# array costs ~10-25 µs on CPU, and a RunEnv step reads all of these.
SNAPSHOT_FIELDS: tuple[tuple[str, tuple[int, ...]], ...] = (
    ("failed", ()),  # 1.0 when the step's result was non-finite (the state was kept)
    ("time", ()),  # s
    ("observation", (OBSERVATION_SIZE,)),
    ("body_origin", (len(BODIES), 2)),  # m, ground frame
    ("body_angle", (len(BODIES),)),  # rad
    ("ligament_torques", (len(LIGAMENTS),)),  # N·m
    ("foot_forces", (len(FOOT_CONTACTS), 2)),  # N, ground frame
    ("activation", (len(MUSCLES),)),
    ("fiber_length", (len(MUSCLES),)),  # m
)
_SIZES = [int(np.prod(shape)) for _, shape in SNAPSHOT_FIELDS]
_OFFSETS = np.cumsum([0, *_SIZES])


def _pack(params: ModelParams, state: EnvState, obs: jnp.ndarray, failed: jnp.ndarray):
    """`SNAPSHOT_FIELDS` of a state as one vector of the state's float dtype."""
    r = system.reports(params, state.q, state.u, state.obstacles)
    dtype = state.q.dtype
    parts = (
        failed,
        state.time,
        obs,
        r.body_origin,
        r.body_angle,
        r.ligament_torques,
        r.foot_forces,
        state.activation,
        state.fiber_length,
    )
    return jnp.concatenate([jnp.ravel(jnp.asarray(x, dtype)) for x in parts])


def unpack(packed: np.ndarray) -> dict[str, np.ndarray]:
    """The host's view of a packed snapshot: name -> float64 array (SNAPSHOT_FIELDS shapes)."""
    flat = np.asarray(packed, dtype=np.float64)
    return {
        name: flat[_OFFSETS[i] : _OFFSETS[i + 1]].reshape(shape)
        for i, (name, shape) in enumerate(SNAPSHOT_FIELDS)
    }


@engine_jit(static_argnames=("integrator", "first_integrator"))
def _step_and_snapshot(params, state, action, plan, integrator, first_integrator):
    """`step`, and the packed snapshot of the new state, in one compiled call: with
    `plan`, `step_with_plan` (no redo); without, `step` with its redo by `first_integrator`."""
    if plan is None:
        new, obs, reward, done = step(params, state, action, integrator, first_integrator)
    else:
        new, obs, reward, done = step_with_plan(params, state, action, plan, integrator)
    failed = done & (reward == INTEGRATOR_FAILURE_REWARD)
    return new, _pack(params, new, obs, failed)


@engine_jit
def _state_snapshot(params, state):
    """The packed snapshot of a state set from outside (failed = 0)."""
    return _pack(params, state, observe(params, state), jnp.zeros((), bool))


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
        self._first_integrator = first_step_integrator(self.integrator)
        # (regular step's plan, first step's plan) where both share the scheme (the imex
        # schemes): arrays made once, handed to one compiled program.
        self._plans: tuple[SubstepPlan, SubstepPlan] | None = None
        if self._first_integrator.scheme == self.integrator.scheme:
            self._plans = tuple(
                SubstepPlan(
                    jnp.asarray(p.count),
                    jnp.asarray(p.first, self.dtype),
                    jnp.asarray(p.ratio, self.dtype),
                )
                for p in (
                    substep_plan(self.integrator, STEP_SIZE_S),
                    substep_plan(self._first_integrator, STEP_SIZE_S),
                )
            )
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
        self._step_count = 0

    def step(self, excitations: np.ndarray) -> None:
        # A host array: the jitted call moves it to the device, cheaper than an eager conversion
        # (the step clips it to [0, 1]).
        action = np.asarray(excitations, dtype=self.dtype).reshape(len(MUSCLES))
        # A done flag from the pure step (fall / time limit) is RunEnv's business, not ours.
        state = self.state._replace(done=self._not_done)
        if self._step_count is None:  # a state set from outside
            self._step_count = int(state.step_count)
        # Without plans, one call of `step.step` (its own redo). With them, `step.step`'s
        # choice is made here: the first-step substeps for an episode's first step, and again
        # for a step whose result was non-finite.
        plans: tuple[SubstepPlan | None, ...] = (None,)
        if self._plans is not None:
            plans = self._plans[1:] if self._step_count == 0 else self._plans
        for plan in plans:
            new, packed = _step_and_snapshot(
                self.params, state, action, plan, self.integrator, self._first_integrator
            )
            host = unpack(packed)  # the one transfer of this step
            # The pure step keeps the last finite state and flags the failure.
            if not host["failed"]:
                break
        else:
            raise IntegratorError(
                f"the state became non-finite integrating to t={float(host['time']):.2f} s"
            )
        count = self._step_count + 1
        self.state = new  # clears the caches (the setter below); this is the new state's
        self._host, self._step_count = host, count

    def _snapshot(self) -> dict[str, np.ndarray]:
        if self._host is None:
            self._host = unpack(_state_snapshot(self.params, self.state))
        return self._host

    @property
    def time(self) -> float:
        return float(self._snapshot()["time"])

    @property
    def state(self) -> EnvState | None:
        """The runner's `EnvState` (setting it, e.g. to restore a saved one, drops the cached
        observation and reports)."""
        return self._state

    @state.setter
    def state(self, value: EnvState | None) -> None:
        self._state = value
        self._step_count: int | None = None  # the state's step count, read when needed
        self._host: dict[str, np.ndarray] | None = None
        self._paths_cache: list[np.ndarray] | None = None

    def observation(self) -> np.ndarray:
        return self._snapshot()["observation"].copy()

    def ligament_forces(self) -> np.ndarray:
        return self._snapshot()["ligament_torques"].copy()

    def body_poses(self) -> dict[str, tuple[float, float, float]]:
        s = self._snapshot()
        origin, angle = s["body_origin"].tolist(), s["body_angle"].tolist()
        return {name: (*origin[i], angle[i]) for i, name in enumerate(BODIES)}

    def muscle_paths(self) -> list[np.ndarray]:
        # Cached per state: a recording and a live viewer both draw every step.
        if self._paths_cache is None:
            points, mask = (np.asarray(a) for a in _muscle_paths(self.params, self.state.q))
            self._paths_cache = [
                np.asarray(points[i][mask[i]], dtype=np.float64) for i in range(len(MUSCLES))
            ]
        return [p.copy() for p in self._paths_cache]

    def activations(self) -> np.ndarray:
        return self._snapshot()["activation"].copy()

    def fiber_lengths(self) -> np.ndarray:
        return self._snapshot()["fiber_length"].copy()

    def contact_forces(self) -> dict[str, np.ndarray]:
        forces = self._snapshot()["foot_forces"]
        return {name: forces[i].copy() for i, name in enumerate(FOOT_CONTACTS)}
