"""`JaxEngine`: the JAX physics behind the `Engine` protocol, so `RunEnv(engine="jax")` works.

Calls the jitted pure `step`, fused with the observation and the reports (body poses, contact
and ligament forces) of the new state, so one `RunEnv.step` is one dispatch of compiled code and
one transfer to the host: everything the reporting methods give comes back packed in one vector
(`SNAPSHOT_FIELDS`), which also holds the runner's changing state (the `EnvState` is rebuilt
from it only when read) and is the next call's state argument; the model travels as one flat
buffer per dtype (`pack_params`). The host picks the substeps (an episode's first step, and a
redo of a non-finite step, take the first-step scheme's), so the compiled program holds one
copy of the scheme: `step.step`'s `lax.cond` holds two, and XLA's CPU runtime books every
buffer of a program on every call.
Needs neither OpenSim nor the JSON model definition: the model comes from the packaged
parameter file.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from l2run.course import Course, check_reported_obstacles
from l2run.engines.base import STEP_SIZE_S, IntegratorError, float_dtype_name
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
)
from l2run.engines.jax.xla_options import engine_jit
from l2run.model.names import BODIES, COORDINATES, FOOT_CONTACTS, LIGAMENTS, MUSCLES
from l2run.observation import OBSERVATION_SIZE, pad_obstacles

DTYPES = {"float64": jnp.float64, "float32": jnp.float32}


def cast_params(params: ModelParams, dtype) -> ModelParams:
    """Floating-point leaves of `params` as `dtype` (integer index arrays unchanged)."""
    return jax.tree.map(
        lambda x: x.astype(dtype) if jnp.issubdtype(x.dtype, jnp.floating) else x, params
    )


# What one step hands to the host, packed into one vector (name, shape): a transfer per
# array costs ~10-25 µs on CPU, and a RunEnv step reads all of these. The vector also holds
# the rest of the runner's changing state (q, u, ...), so that it is the step's only output and,
# with the course's arrays, its state input: a compiled call's every argument and result costs
# dispatch time (~0.4 µs per argument, ~2 µs per result here), more than moving a few numbers.
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
    ("q", (len(COORDINATES),)),  # rad or m
    ("u", (len(COORDINATES),)),  # rad/s or m/s
    ("last_pelvis_x", ()),  # m
    ("step_count", ()),  # control steps since reset (exact as a float)
    ("done", ()),  # 1.0 when the pure step says the episode is over
)


def _field_slices() -> dict[str, tuple[int, int, tuple[int, ...]]]:
    """name -> (start, stop, shape) of each field in the packed vector."""
    slices, start = {}, 0
    for name, shape in SNAPSHOT_FIELDS:
        stop = start + int(np.prod(shape, dtype=int))
        slices[name], start = (start, stop, shape), stop
    return slices


_SLICES = _field_slices()  # computed once: the host unpacks every step


def _field(packed: jnp.ndarray, name: str) -> jnp.ndarray:
    start, stop, shape = _SLICES[name]
    return packed[start:stop].reshape(shape)


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
        state.q,
        state.u,
        state.last_pelvis_x,
        state.step_count,
        state.done,
    )
    return jnp.concatenate([jnp.ravel(jnp.asarray(x, dtype)) for x in parts])


def _state_of(packed: jnp.ndarray, obstacles: jnp.ndarray, psoas: jnp.ndarray) -> EnvState:
    """The `EnvState` a packed snapshot holds, on its course."""
    return EnvState(
        q=_field(packed, "q"),
        u=_field(packed, "u"),
        activation=_field(packed, "activation"),
        fiber_length=_field(packed, "fiber_length"),
        time=_field(packed, "time"),
        step_count=_field(packed, "step_count").astype(jnp.int32),
        last_pelvis_x=_field(packed, "last_pelvis_x"),
        obstacles=obstacles,
        psoas=psoas,
        done=_field(packed, "done") != 0.0,
    )


# (name, slice, shape) of each field, for the host's unpacking of every step
_HOST_FIELDS = tuple((name, slice(a, b), shape) for name, (a, b, shape) in _SLICES.items())


def unpack(packed: np.ndarray) -> dict[str, np.ndarray]:
    """The host's view of a packed snapshot: name -> float64 array (SNAPSHOT_FIELDS shapes)."""
    flat = np.asarray(packed, dtype=np.float64)
    return {name: flat[where].reshape(shape) for name, where, shape in _HOST_FIELDS}


class ParamLayout(NamedTuple):
    """Where each leaf of a `ModelParams` lies in its dtype's flat buffer (hashable: a static
    argument, so engines with equal layouts share compiled programs)."""

    treedef: Any
    leaves: tuple[tuple[int, int, tuple[int, ...]], ...]  # (buffer, offset, shape) per leaf
    dtypes: tuple[str, ...]  # one per buffer
    digest: int  # hash of the fields above, computed once (`layout_of`)

    def __hash__(self) -> int:
        # A static argument is hashed on every call: the 64 leaves' tuples took ~1.5 µs,
        # several times that right after a step's compiled program (RunEnv.step 1.02x).
        return self.digest


def layout_of(treedef: Any, leaves: tuple, dtypes: tuple[str, ...]) -> ParamLayout:
    """The `ParamLayout` of these fields, its hash computed once."""
    return ParamLayout(treedef, leaves, dtypes, hash((treedef, leaves, dtypes)))


def pack_params(params: ModelParams) -> tuple[tuple[jnp.ndarray, ...], ParamLayout]:
    """`params` as one flat buffer per dtype, and the layout to rebuild it (`unpack_params`):
    a compiled call then takes 2 arguments for the model instead of its 64 leaves."""
    leaves, treedef = jax.tree.flatten(params)
    dtypes = tuple(dict.fromkeys(str(leaf.dtype) for leaf in leaves))
    parts: list[list[jnp.ndarray]] = [[] for _ in dtypes]
    sizes = [0] * len(dtypes)
    where = []
    for leaf in leaves:
        b = dtypes.index(str(leaf.dtype))
        where.append((b, sizes[b], tuple(leaf.shape)))
        parts[b].append(jnp.ravel(leaf))
        sizes[b] += leaf.size
    buffers = tuple(jnp.concatenate(p) for p in parts)
    return buffers, layout_of(treedef, tuple(where), dtypes)


def unpack_params(buffers: tuple[jnp.ndarray, ...], layout: ParamLayout) -> ModelParams:
    """The `ModelParams` that `pack_params` flattened (slices of the buffers: no copies)."""
    leaves = [
        buffers[b][offset : offset + int(np.prod(shape, dtype=int))].reshape(shape)
        for b, offset, shape in layout.leaves
    ]
    return jax.tree.unflatten(layout.treedef, leaves)


def _step_and_pack(
    param_buffers, packed, obstacles, psoas, action, plan, layout, integrator, first_integrator
):
    """`step` from the state in `packed` (done cleared: that is RunEnv's business), and the
    packed snapshot of the new state, in one compiled call: with `plan`, those substeps and no
    redo; without, `step` with its redo by `first_integrator`."""
    params = unpack_params(param_buffers, layout)
    state = _state_of(packed, obstacles, psoas)._replace(done=jnp.zeros((), bool))
    first = first_integrator if plan is None else None
    new, obs, reward, done = step(params, state, action, integrator, first, plan=plan)
    failed = done & (reward == INTEGRATOR_FAILURE_REWARD)
    return _pack(params, new, obs, failed)


_STEP_STATIC = ("layout", "integrator", "first_integrator")
# With a plan (the imex schemes) the whole program is one CPU kernel (`as_one_kernel`: ~250
# operations around the substep loop launched one by one otherwise; `RunEnv.step` 1.27x,
# benchmarks/RESULTS.md, 2026-12-05 session 40). Without one (RK4, whose step holds the ROS2
# first-step scheme's 600 substeps for its redo) it is not: LLVM took 4 min instead of 1.5 over
# that one kernel.
_step_and_snapshot = engine_jit(_step_and_pack, static_argnames=_STEP_STATIC)
_planned_step_and_snapshot = engine_jit(
    _step_and_pack, static_argnames=_STEP_STATIC, one_kernel=True
)


def _snapshot(params: ModelParams, state: EnvState) -> jnp.ndarray:
    """The packed snapshot of a state no step produced (failed = 0)."""
    return _pack(params, state, observe(params, state), jnp.zeros((), bool))


@engine_jit(static_argnames=("layout",))
def _state_snapshot(param_buffers, state, layout):
    """The packed snapshot of a state set from outside."""
    return _snapshot(unpack_params(param_buffers, layout), state)


@engine_jit(static_argnames=("layout",))
def _reset_snapshot(param_buffers, obstacles, psoas, layout):
    """The packed snapshot of the model's default state on a course, and the course's arrays
    on the device, in one compiled call (eager, the default state's few operations each cost
    a dispatch: ~0.5 ms a reset)."""
    params = unpack_params(param_buffers, layout)
    state = reset(params, obstacles, psoas)
    return _snapshot(params, state), state.obstacles, state.psoas


_state_from_snapshot = engine_jit(_state_of)
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
        dtype = float_dtype_name(dtype)
        self.integrator = parse_integrator(integrator)
        self.dtype = DTYPES[dtype]
        self._host_dtype = np.dtype(dtype)
        self.params = cast_params(params if params is not None else load_params(), self.dtype)
        self._param_buffers, self._layout = pack_params(self.params)
        self._first_integrator = first_step_integrator(self.integrator)
        # (regular step's plan, first step's plan) where both schemes are one scheme (the
        # imex schemes): arrays made once, handed to one program.
        self._plans: tuple[SubstepPlan, SubstepPlan] | None = None
        if self._first_integrator.scheme == self.integrator.scheme:
            self._plans = tuple(
                SubstepPlan(
                    jnp.asarray(p.count, jnp.int32),
                    jnp.asarray(p.first, self.dtype),
                    jnp.asarray(p.ratio, self.dtype),
                )
                for p in (
                    substep_plan(self.integrator, STEP_SIZE_S),
                    substep_plan(self._first_integrator, STEP_SIZE_S),
                )
            )
        self.course = Course()
        self.reset(self.course)

    def reset(self, course: Course) -> None:
        check_reported_obstacles(course)
        self.course = course
        self._packed, self._obstacles, self._psoas = _reset_snapshot(
            self._param_buffers,
            np.asarray(pad_obstacles(course.obstacles), self._host_dtype),
            np.asarray(course.psoas, self._host_dtype),
            self._layout,
        )
        self._state: EnvState | None = None  # built from the snapshot when asked for
        self._host: dict[str, np.ndarray] | None = None
        self._paths_cache: list[np.ndarray] | None = None

    def step(self, excitations: np.ndarray) -> None:
        # A host array: the jitted call moves it to the device, cheaper than an eager conversion
        # (the step clips it to [0, 1]).
        action = np.asarray(excitations, dtype=self._host_dtype).reshape(len(MUSCLES))
        # Without plans, one call of `step.step` (its own redo). With them, `step.step`'s
        # choice is made here: the first-step substeps for an episode's first step, and again
        # for a step whose result was non-finite.
        plans: tuple[SubstepPlan | None, ...] = (None,)
        if self._plans is not None:
            fresh = self._snapshot()["step_count"] == 0
            plans = self._plans[1:] if fresh else self._plans
        for plan in plans:
            program = _step_and_snapshot if plan is None else _planned_step_and_snapshot
            packed = program(
                self._param_buffers,
                self._packed,
                self._obstacles,
                self._psoas,
                action,
                plan,
                self._layout,
                self.integrator,
                self._first_integrator,
            )
            host = unpack(packed)  # the one transfer of this step
            # The pure step keeps the last finite state and flags the failure.
            if not host["failed"]:
                break
        else:
            # A non-finite excitation fails the step by design (`step.finite_actions`); checked
            # only here, off the path every valid step takes. The state is kept either way.
            if not np.isfinite(action).all():
                raise ValueError(f"excitations must be finite, got {action.tolist()}")
            raise IntegratorError(
                f"the state became non-finite integrating to t={float(host['time']):.2f} s"
            )
        self._packed, self._host, self._state = packed, host, None
        self._paths_cache = None

    def _snapshot(self) -> dict[str, np.ndarray]:
        if self._host is None:
            self._host = unpack(self._packed)
        return self._host

    @property
    def time(self) -> float:
        return float(self._snapshot()["time"])

    @property
    def state(self) -> EnvState:
        """The runner's `EnvState` (setting it, e.g. to restore a saved one, drops the cached
        observation and reports)."""
        if self._state is None:
            self._state = _state_from_snapshot(self._packed, self._obstacles, self._psoas)
        return self._state

    @state.setter
    def state(self, value: EnvState) -> None:
        self._packed = _state_snapshot(self._param_buffers, value, self._layout)
        self._obstacles, self._psoas = value.obstacles, value.psoas
        self._state = value
        self._host = None
        self._paths_cache = None

    def observation(self) -> np.ndarray:
        return self._snapshot()["observation"].copy()

    def ligament_forces(self) -> np.ndarray:
        return self._snapshot()["ligament_torques"].copy()

    def body_poses(self) -> dict[str, tuple[float, float, float]]:
        s = self._snapshot()
        origin, angle = s["body_origin"].tolist(), s["body_angle"].tolist()
        return {name: (*o, a) for name, o, a in zip(BODIES, origin, angle, strict=True)}

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
