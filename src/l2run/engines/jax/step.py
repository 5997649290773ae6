"""The JAX engine's pure environment functions: `reset` and `step` (jit/vmap/grad-able).

``step(params, state, action) -> (state, obs, reward, done)`` holds the 18 excitations for one
0.01 s control step, integrates with a fixed-step scheme (`integrate.py`), and computes the
seed's observation, reward and done exactly as `RunEnv` does for the OpenSim engine:
reward = Δ pelvis x − 1e-7·‖ligament torques‖, done when pelvis y < 0.65 m or after 1000 steps;
a non-finite state ends the episode with reward −500 (the OpenSim engine's integrator failure)
and keeps the last finite state. Stepping a done state changes nothing (reward 0), so a batch
can run in lockstep until every environment is done. No Python control flow on values.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from l2run.engines.base import (
    FALL_HEIGHT_M,
    INTEGRATOR_FAILURE_REWARD,
    STEP_SIZE_S,
    TIMESTEP_LIMIT,
)
from l2run.engines.jax import loop_kernels, system
from l2run.engines.jax.integrate import (
    SCHEMES,
    Continuous,
    Integrator,
    SubstepPlan,
    integrate,
)
from l2run.engines.jax.params import ModelParams
from l2run.engines.jax.state import EnvState
from l2run.engines.jax.xla_options import engine_jit
from l2run.model.names import MUSCLES
from l2run.observation import assemble, ligament_penalty

PELVIS_X, PELVIS_Y = 1, 2  # indices in q
N_EXCITATIONS = len(MUSCLES)  # an action: one excitation per muscle

# The measured defaults (README "The JAX engine"). Every step: `imex_stiff` x 10 — implicit
# muscle states, multibody by symplectic Euler with the contact, ligament and muscle stiffness
# linearly implicit, 1 evaluation per substep. It is the default, rather than the more accurate
# open-loop RK4 x 20, because fixed-step explicit RK4 does not hold a walking controller up: the
# pretrained runner falls within 2.5 s under RK4 x 20 (and x 40) where OpenSim, RK4 x 100 and
# `imex_stiff` x 10 keep it walking, although the derivatives match OpenSim's to ~1e-10 along
# that very gait (tests/engines/jax/test_closed_loop.py). Plain "imex" (explicit contact and
# ligaments) is faster but exploitable: a policy trained on imex x 10 ran 10 m there and fell
# after 0.85 m in OpenSim.
DEFAULT_INTEGRATOR = Integrator("imex_stiff", 10)
# Open-loop accuracy (0.02–0.05 mm over 0.5 s against OpenSim at 1e-7) for parity work.
ACCURATE_INTEGRATOR = Integrator("rk4", 20)
# The first step after reset starts from the model's default state, whose fibre lengths are far
# from equilibrium: they relax within ~1e-5..1e-3 s, with tendon forces up to ~150 kN meanwhile —
# an impulse only finely graded substeps resolve. After RK4: a stiff (L-stable) ROS2; after the
# imex schemes, graded substeps of their own (60 evaluations, not ROS2's 1,200), so a batch that
# redoes its freshly reset runners stays cheap.
RK4_FIRST_STEP_INTEGRATOR = Integrator("ros2", 600, 1.02)
IMEX_FIRST_STEP_INTEGRATOR = Integrator("imex", 60, 1.15)
IMEX_SCHEMES = ("imex", "imex_stiff")  # the model substeps `system.imex_substep` provides


def first_step_integrator(integrator: Integrator) -> Integrator:
    """The scheme for an episode's first step that goes with `integrator` for the others."""
    if integrator.scheme in IMEX_SCHEMES:
        return IMEX_FIRST_STEP_INTEGRATOR._replace(scheme=integrator.scheme)
    return RK4_FIRST_STEP_INTEGRATOR


FIRST_STEP_INTEGRATOR = first_step_integrator(DEFAULT_INTEGRATOR)


def parse_integrator(integrator: Integrator | tuple | str | None) -> Integrator:
    """An `Integrator` from None (the default), an Integrator, (scheme, substeps[, grading]) or
    "scheme:substeps"; a clear ValueError for an unknown scheme or substeps < 1."""
    if integrator is None:
        return DEFAULT_INTEGRATOR
    if isinstance(integrator, str):
        scheme, _, substeps = integrator.partition(":")
        try:
            integrator = Integrator(scheme, int(substeps or 1))
        except ValueError as exc:
            raise ValueError(f"integrator must look like 'rk4:20', got {integrator!r}") from exc
    else:
        integrator = Integrator(*integrator)
    if integrator.scheme not in SCHEMES or integrator.substeps < 1:
        raise ValueError(
            f"integrator scheme must be one of {tuple(SCHEMES)} with substeps >= 1, "
            f"got {integrator!r}"
        )
    return integrator


def reset(params: ModelParams, obstacles: jnp.ndarray, psoas: jnp.ndarray) -> EnvState:
    """The model's default state (no equilibration) on a course: obstacles (20, 3) padded
    (`l2run.observation.pad_obstacles`), psoas (left, right)."""
    d = params.default
    dtype = d.q.dtype
    return EnvState(
        q=d.q,
        u=d.u,
        activation=d.activation,
        fiber_length=d.fiber_length,
        time=jnp.zeros((), dtype),
        step_count=jnp.zeros((), jnp.int32),
        last_pelvis_x=d.q[PELVIS_X],
        obstacles=jnp.asarray(obstacles, dtype),
        psoas=jnp.asarray(psoas, dtype),
        done=jnp.zeros((), bool),
    )


def continuous(state: EnvState) -> Continuous:
    return Continuous(state.q, state.u, state.activation, state.fiber_length)


def observe(params: ModelParams, state: EnvState) -> jnp.ndarray:
    """The seed's 41 observation values of a state (`l2run.observation.assemble`)."""
    k = system.kinematic_outputs(params, state.q, state.u)
    return assemble(
        state.q,
        state.u,
        k.com_position,
        k.com_velocity,
        k.obs_body_xy,
        state.psoas,
        state.obstacles,
        xp=jnp,
    )


def _all_finite(y: Continuous) -> jnp.ndarray:
    # one reduction over every number (each traced reduction costs a call its own buffers)
    return jnp.all(jnp.isfinite(jnp.concatenate([jnp.ravel(x) for x in jax.tree.leaves(y)])))


@engine_jit(static_argnames=("integrator", "first_integrator", "single_kernel_loops"))
def step(
    params: ModelParams,
    state: EnvState,
    action: jnp.ndarray,
    integrator: Integrator = DEFAULT_INTEGRATOR,
    first_integrator: Integrator | None = FIRST_STEP_INTEGRATOR,
    single_kernel_loops: bool | None = None,
    plan: SubstepPlan | None = None,
) -> tuple[EnvState, jnp.ndarray, jnp.ndarray, jnp.ndarray]:
    """One 0.01 s control step: (new state, observation (41,), reward, done).

    Every step runs `integrator`; the step from t = 0, and any step whose `integrator` result
    is non-finite (a stiff stretch), is then run again from the same start with
    `first_integrator` (None: no such redo). That is one `lax.cond`: a real branch for one
    environment, but under `vmap` both branches run for every environment, so batched code
    that cares about speed should pass `first_integrator=None` or step freshly reset
    environments separately.

    `plan` (`integrate.substep_plan`'s numbers as arrays, given at run time) replaces
    `integrator`'s substeps, so one compiled program serves the imex schemes' regular and first
    steps (`first_step_integrator` differs only in substeps and grading): a caller that knows
    which step it takes, as `JaxEngine` does, compiles one copy of the scheme. It needs
    `first_integrator=None` and is not differentiable in reverse mode.

    `single_kernel_loops` spells the indexed writes and solves so that XLA's CPU backend
    compiles each substep loop into one kernel (`loop_kernels`): the fast choice for one
    runner; under `vmap` pass False (batched scatters and solves are cheaper). None: True on
    a CPU backend with the loop-size threshold in force. Same numbers either way, to round-off.
    """
    if plan is not None and first_integrator is not None:
        raise ValueError("a step with a substep plan takes no first_integrator (pass None)")
    check_inputs(params, state, action)
    if single_kernel_loops is None:
        single_kernel_loops = loop_kernels.single_kernel_loops_pay()
    with loop_kernels.single_kernel_loops(single_kernel_loops):
        return _step(params, state, action, integrator, first_integrator, plan)


def check_inputs(params: ModelParams, state: EnvState, action: Any) -> None:
    """Refuse, with a clear error, what jit would otherwise broadcast or promote silently: an
    action that is not one runner's (18,) excitations, and a state whose floats are not the
    model's (float32 params with a float64 state would compute in float64). Shapes and dtypes
    only, so jit-safe; for one runner (a batch's rows are checked by `rollout`)."""
    if jnp.shape(action) != (N_EXCITATIONS,):
        raise ValueError(
            f"an action must have shape ({N_EXCITATIONS},) (one excitation per muscle), got "
            f"{jnp.shape(action)}"
        )
    check_float_dtype(params, state, "the state")


def finite_actions(action: jnp.ndarray) -> jnp.ndarray:
    """Whether each action (the last axis: one runner's excitations) is all finite: a step
    with a NaN or infinite excitation is an integrator failure, and is not redone."""
    return jnp.all(jnp.isfinite(action), axis=-1)


def check_float_dtype(params: ModelParams, state: EnvState, what: str) -> None:
    """ValueError unless `state`'s floats have the dtype of `params`' (`rollout.cast_floats`
    casts either)."""
    model, given = jnp.result_type(params.default.q), jnp.result_type(state.q)
    if given != model:
        raise ValueError(
            f"{what} holds {given} numbers but the model's parameters are {model}: cast both "
            "with `rollout.cast_floats(tree, dtype)`"
        )


def _step(
    params: ModelParams,
    state: EnvState,
    action: jnp.ndarray,
    integrator: Integrator,
    first_integrator: Integrator | None,
    plan: SubstepPlan | None = None,
) -> tuple[EnvState, jnp.ndarray, jnp.ndarray, jnp.ndarray]:
    """`step`'s computation, traced under the caller's `loop_kernels` choice; `plan`, if
    given, replaces `integrator`'s substeps."""
    action = jnp.asarray(action, state.q.dtype)
    excitation = jnp.clip(action, 0.0, 1.0)
    # jitted code cannot raise: a NaN or infinite excitation makes the step an integrator
    # failure (state kept, −500, done) rather than one clipped to 0 or 1 or run into NaNs
    valid_action = finite_actions(action)

    def f(y: Continuous) -> Continuous:
        return system.derivatives(params, y, excitation, state.obstacles, state.psoas)

    def f_jac(y: Continuous):
        return system.evaluate_with_jacobian(params, y, excitation, state.obstacles, state.psoas)

    def run(integ: Integrator, y: Continuous, plan: SubstepPlan | None = None) -> Continuous:
        """One control step from y with scheme `integ` (its substeps, or `plan`'s)."""

        def advance(yy: Continuous, h: jnp.ndarray) -> Continuous:
            stiff = integ.scheme == "imex_stiff"
            return system.imex_substep(
                params, yy, excitation, state.obstacles, state.psoas, h, stiff=stiff
            )

        return integrate(f, y, STEP_SIZE_S, integ, f_jac, advance, plan)

    y0 = continuous(state)
    y = run(integrator, y0, plan)
    finite = _all_finite(y) & valid_action
    if first_integrator is not None and first_integrator != integrator:
        # An episode's first step starts far from fibre equilibrium, and all muscles at
        # minimum activation make the fibre ODEs stiffer than RK4's stability limit (zero
        # excitations diverge near t = 1.05 s): such steps run (again) under the first-step
        # scheme. One branch serves both, so the program holds one copy of that scheme, not
        # two: a copy adds hundreds of buffer allocations (its reductions' and single-kernel
        # loops' values), and XLA's CPU runtime books every allocation on every call.
        # A real branch for one environment; under `vmap` both branches run for every one.
        def redo(_: Continuous) -> Continuous:
            return run(first_integrator, y0)

        redone = (state.step_count == 0) | (~finite & valid_action)
        y = jax.lax.cond(redone, redo, lambda yy: yy, y)
        finite = _all_finite(y) & valid_action
    y = jax.tree.map(lambda new, old: jnp.where(finite, new, old), y, continuous(state))
    count = state.step_count + 1
    lig = system.ligament_torques(params, y.q, y.u)
    pelvis_x = y.q[PELVIS_X]
    reward = pelvis_x - state.last_pelvis_x - ligament_penalty(lig, xp=jnp)
    reward = jnp.where(finite, reward, INTEGRATOR_FAILURE_REWARD)
    done = (y.q[PELVIS_Y] < FALL_HEIGHT_M) | (count >= TIMESTEP_LIMIT) | ~finite
    new = EnvState(
        q=y.q,
        u=y.u,
        activation=y.activation,
        fiber_length=y.fiber_length,
        time=state.time + STEP_SIZE_S,
        step_count=count,
        last_pelvis_x=pelvis_x,
        obstacles=state.obstacles,
        psoas=state.psoas,
        done=done,
    )
    # A finished episode stays as it was.
    new = jax.tree.map(lambda n, o: jnp.where(state.done, o, n), new, state)
    reward = jnp.where(state.done, 0.0, reward)
    return new, observe(params, new), reward, new.done
