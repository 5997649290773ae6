"""Batched and functional API of the JAX engine: `vmap` over runners, `lax.scan` over time.

Everything here is a pure function of arrays (no host round-trips, no Python branching on
values), so the same code runs on CPU or GPU — pick the device with ``JAX_PLATFORMS=cpu|cuda``.
A batch is an `EnvState` whose every field has a leading axis B (one row per runner, each with
its own course); `step.reset` / `step.step` are the single-runner functions being mapped (on
CPU `batch_step` maps with the runners as the last axis inside, `minor_vmap`; its inputs and
outputs have B first all the same).

    params = load_params()                     # float32: cast_floats(params, jnp.float32)
    obstacles, psoas = course_arrays(courses)  # host numpy: (B, 20, 3), (B, 2)
    state = batch_reset(params, obstacles, psoas)                    # EnvState, leading axis B
    state, obs, reward, done = batch_step(params, state, actions)    # actions (B, 18)
    final, traj = rollout(params, state, policy_fn, key, steps=100)  # lax.scan, jitted

Semantics are `step.step`'s: a finished runner stays frozen with reward 0 until it is reset.
`autoreset_step` (and `rollout(..., reset_state=...)`) instead replaces every runner that
finished by its row of `reset_state` in the same call (gymnasium's "same-step" autoreset; the
last observation of the finished episode comes back as `final_obs`), as Brax's
`AutoResetWrapper` does with its stored first state.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from l2run.course import Course, check_reported_obstacles
from l2run.engines.jax import minor_vmap
from l2run.engines.jax import step as env_step
from l2run.engines.jax.integrate import Integrator
from l2run.engines.jax.params import ModelParams
from l2run.engines.jax.state import EnvState
from l2run.engines.jax.xla_options import engine_jit
from l2run.observation import MAX_OBSTACLE_SLOTS, PELVIS_Y, obstacle_slots, pad_obstacles

N_EXCITATIONS = env_step.N_EXCITATIONS
# A policy maps (observations (..., 41), PRNG key) to excitations (..., 18).
PolicyFn = Callable[[jnp.ndarray, jax.Array], jnp.ndarray]


class Transition(NamedTuple):
    """One control step of a rollout; `rollout` stacks them along a leading time axis T."""

    obs: jnp.ndarray  # ([B,] 41) observation the action was chosen from
    action: jnp.ndarray  # ([B,] 18) excitations as the policy returned them
    reward: jnp.ndarray  # ([B],) reward of the step (0 once an episode is over, no autoreset)
    done: jnp.ndarray  # ([B],) bool, the episode ended at this step (not before: no autoreset)
    next_obs: jnp.ndarray  # ([B,] 41) observation after the step (the final one when done)


class CoursePool(NamedTuple):
    """K courses drawn on the host (2017 draw order), for resets inside a device program."""

    obstacles: jnp.ndarray  # (K, 20, 3) padded rows (x, y, r), m
    psoas: jnp.ndarray  # (K, 2) left, right strength multipliers


class AutoresetStep(NamedTuple):
    """`autoreset_step`'s results; rows that ended carry the reset runner in state/obs."""

    state: EnvState
    obs: jnp.ndarray  # (B, 41) observation to act on next (reset observation where ended)
    reward: jnp.ndarray  # (B,)
    terminated: jnp.ndarray  # (B,) bool: fell (pelvis y < 0.65 m) or the integrator failed
    truncated: jnp.ndarray  # (B,) bool: step limit reached without a fall
    final_obs: jnp.ndarray  # (B, 41) observation at the end of this step, before any reset


# --- host-side helpers (numpy) ------------------------------------------------------------


def course_arrays(
    courses: Sequence[Course], slots: int = MAX_OBSTACLE_SLOTS
) -> tuple[np.ndarray, np.ndarray]:
    """Padded obstacles (B, slots, 3) and psoas (left, right) (B, 2) of B courses (numpy, m).

    A batch whose courses have at most k obstacles can hold `obstacle_slots(k)` rows instead
    of 20: padding rows exert no force, and every substep computes each row's contact with the
    four foot spheres, so the vector env, `course_pool` and the benchmarks hold their courses'
    maximum (benchmarks/RESULTS.md, 2026-12-05 session 37)."""
    for course in courses:
        check_reported_obstacles(course)
    obstacles = np.stack([pad_obstacles(c.obstacles, slots) for c in courses]).reshape(
        len(courses), slots, 3
    )
    psoas = np.array([c.psoas for c in courses], dtype=np.float64).reshape(len(courses), 2)
    return obstacles, psoas


def course_pool(seeds: Sequence[int], difficulty: int = 2, max_obstacles: int = 3) -> CoursePool:
    """One course per seed, each drawn as ``RunEnv.reset(difficulty, seed)`` draws it."""
    from l2run.course import generate_course

    courses = [
        generate_course(np.random.RandomState(s), difficulty, max_obstacles, seed=s) for s in seeds
    ]
    arrays = course_arrays(courses, obstacle_slots(max_obstacles))
    return CoursePool(*(jnp.asarray(a) for a in arrays))


def cast_floats(tree: Any, dtype: Any) -> Any:
    """`tree` with every floating-point leaf cast to `dtype` (integer index arrays untouched).

    ``cast_floats(load_params(), jnp.float32)`` gives float32 parameters; states reset from
    them (and every step) are then float32 too.
    """

    def cast(leaf: Any) -> Any:
        leaf = jnp.asarray(leaf)
        return leaf.astype(dtype) if jnp.issubdtype(leaf.dtype, jnp.floating) else leaf

    return jax.tree.map(cast, tree)


def state_nbytes(state: EnvState) -> int:
    """Bytes held by a (batched) state's arrays."""
    return int(sum(np.asarray(leaf).nbytes for leaf in jax.tree.leaves(state)))


# --- batched pure functions ---------------------------------------------------------------


@engine_jit
def batch_reset(params: ModelParams, obstacles: jnp.ndarray, psoas: jnp.ndarray) -> EnvState:
    """B runners in the default pose on their courses: obstacles (B, 20, 3), psoas (B, 2)."""
    return jax.vmap(env_step.reset, in_axes=(None, 0, 0))(params, obstacles, psoas)


@engine_jit
def batch_observe(params: ModelParams, state: EnvState) -> jnp.ndarray:
    """Observations (B, 41) of a batched state."""
    return jax.vmap(env_step.observe, in_axes=(None, 0))(params, state)


FIRST = env_step.FIRST_STEP_INTEGRATOR
# Fresh-runner buckets shrink by this factor: the first-step work is at most this many times
# the number of fresh runners (and one bucket for a whole freshly reset batch).
BUCKET_SHRINK = 8


def bucket_sizes(batch: int) -> tuple[int, ...]:
    """Batch sizes of the first-step program: B, B/8, B/64, ... down to 1 (ascending)."""
    sizes = {batch}
    while batch > 1:
        batch = max(1, batch // BUCKET_SHRINK)
        sizes.add(batch)
    return tuple(sorted(sizes))


# On CPU a step vmapped over thousands of runners streams every intermediate array (hundreds of
# kB per runner and substep) through main memory; mapped over chunks of runners, each chunk's
# substeps stay in cache, and each chunk's fibre Newton loop stops when its own runners have
# converged. Measured (benchmarks/RESULTS.md, 2026-12-02, "Chunks"): 1.25-1.45x less CPU per
# runner at N = 1,024-4,096, and 238 -> 4 MiB of temporaries at N = 4,096. A chunk holds this
# many float64 runners, and as many runners of a narrower float as fill the same bytes (128 in
# float32): with the runners on the last axis a chunk's rows are then 512 bytes whatever the
# dtype, and with each chunk's substeps compiled into one kernel (`loop_kernels`) float32 ran
# 1.08-1.17x faster in chunks of 128 than of 64, float64 0.92x slower in chunks of 128
# (benchmarks/RESULTS.md, 2026-12-05 session 36). A GPU wants the whole batch in one program,
# so it is not chunked. None turns chunking off (set it before the first call: compiled
# programs keep the value they were traced with).
CPU_RUNNER_CHUNK: int | None = 64
CHUNK_REFERENCE_ITEMSIZE = 8  # bytes of the float CPU_RUNNER_CHUNK counts runners of


def runner_chunk(batch: int, backend: str | None = None, dtype: Any = jnp.float64) -> int | None:
    """Runners per chunk for a batch of `batch` runners whose floats are `dtype` on `backend`
    (default: JAX's), None = one vmap."""
    backend = jax.default_backend() if backend is None else backend
    if backend != "cpu" or CPU_RUNNER_CHUNK is None:
        return None
    itemsize = jnp.dtype(dtype).itemsize
    chunk = max(1, CPU_RUNNER_CHUNK * CHUNK_REFERENCE_ITEMSIZE // itemsize)
    return None if batch <= chunk else chunk


# On CPU a batch runs with the runners on the last axis of every array (`minor_vmap`: each
# kernel's inner loop over runners) and the one-kernel spellings of the solves and indexed
# writes (elementwise over runners in that layout): 1.15x (float64) and 1.46x (float32) less
# CPU per runner than `jax.vmap` (benchmarks/RESULTS.md, 2026-12-04 session 34). "major" is
# `jax.vmap` (runners first, LAPACK and scatters). GPUs keep it until runners last is measured
# there (`bench_engines.py --batch-layout minor` on a GPU sets `ACCELERATOR_BATCH_LAYOUT`).
CPU_BATCH_LAYOUT = "minor"
ACCELERATOR_BATCH_LAYOUT = "major"


def batch_layout(backend: str | None = None) -> str:
    """The batch layout on `backend` (default: JAX's): "minor" (runners last, `minor_vmap`)
    or "major" (`jax.vmap`)."""
    backend = jax.default_backend() if backend is None else backend
    return CPU_BATCH_LAYOUT if backend == "cpu" else ACCELERATOR_BATCH_LAYOUT


def _single_step(integrator: Integrator) -> Callable[..., Any]:
    """`step.step` with one scheme for every runner of a batch, in the layout of
    `batch_layout()`: on CPU runners last (`minor_vmap`) in chunks of `CPU_RUNNER_CHUNK`,
    elsewhere one `jax.vmap`."""

    def one(params: ModelParams, state: EnvState, action: jnp.ndarray, kernels: bool) -> Any:
        return env_step.step(params, state, action, integrator, None, kernels)

    vmapped = jax.vmap(partial(one, kernels=False), in_axes=(None, 0, 0))

    def run(params: ModelParams, state: EnvState, action: jnp.ndarray) -> Any:
        chunk = runner_chunk(state.q.shape[0], dtype=state.q.dtype)
        if batch_layout() == "minor":
            return minor_vmap.map_in_chunks(
                partial(one, kernels=True), params, (state, action), chunk
            )
        if chunk is None:
            return vmapped(params, state, action)
        return jax.lax.map(lambda sa: one(params, *sa, False), (state, action), batch_size=chunk)

    return run


# On CPU the runners to redo with the first-step scheme are redone in loops: over groups of a
# CPU chunk's runners while that many remain (a freshly reset batch larger than a chunk), then
# one runner at a time. At most two compiled copies of the first-step program whatever the
# batch size, where `bucket_sizes` compiles one per bucket (B, B/8, ..., 1): `make_vec`'s
# first step at N = 64 compiled 2.1x faster (benchmarks/RESULTS.md, 2026-12-06 session 45).
# One runner costs what its bucket of 1 did; a whole batch of at most a chunk, redone one by
# one, about twice its bucket of B (once per synchronised reset). False: buckets, as on other
# backends, where each iteration of a loop would cost every kernel's launch again.
CPU_REDO_LOOPS = True


def redo_group(batch: int, backend: str | None = None, dtype: Any = jnp.float64) -> int | None:
    """Runners per wide group of the first-step redo loops for a batch of `batch` runners
    whose floats are `dtype` on `backend` (default: JAX's): a CPU chunk's, 1 for a batch of
    at most a chunk or with chunks turned off (one loop, one runner at a time); None = buckets."""
    backend = jax.default_backend() if backend is None else backend
    if backend != "cpu" or not CPU_REDO_LOOPS:
        return None
    return runner_chunk(batch, backend, dtype) or 1


def _scatter_redone(
    results: Any, redone: Any, idx: jnp.ndarray, valid: jnp.ndarray, rows: jnp.ndarray
) -> Any:
    """`results` with row `idx[j]` replaced by `redone`'s row j where `valid[j]` (the others
    rewritten with `results`' row `rows[j]`, their own; indices past the batch dropped)."""

    def put(all_rows: jnp.ndarray, new_rows: jnp.ndarray) -> jnp.ndarray:
        keep = jnp.reshape(valid, valid.shape + (1,) * (new_rows.ndim - 1))
        return all_rows.at[idx].set(jnp.where(keep, new_rows, all_rows[rows]), mode="drop")

    return jax.tree.map(put, results, redone)


def _redo_in_loops(
    first_step: Callable[..., Any],
    params: ModelParams,
    state: EnvState,
    action: jnp.ndarray,
    order: jnp.ndarray,
    n_fresh: jnp.ndarray,
    results: Any,
    group: int,
) -> Any:
    """`results` with the rows of the first `n_fresh` runners of `order` replaced by
    `first_step`'s: whole groups of `group` runners, then the rest one by one."""
    batch = order.shape[0]
    # Positions past the batch name row `batch`: read as the last row, their writes dropped.
    padded = jnp.concatenate([order, jnp.full((group,), batch, order.dtype)])

    def loop(results: Any, size: int, first: jnp.ndarray, trips: jnp.ndarray) -> Any:
        def redo(i: jnp.ndarray, results: Any) -> Any:
            start = first + i * size
            idx = jax.lax.dynamic_slice(padded, (start,), (size,))
            rows = jnp.minimum(idx, batch - 1)
            sub = first_step(params, jax.tree.map(lambda a: a[rows], state), action[rows])
            return _scatter_redone(results, sub, idx, start + jnp.arange(size) < n_fresh, rows)

        return jax.lax.fori_loop(0, trips, redo, results)

    wide = n_fresh // group
    results = loop(results, group, 0, wide)
    if group == 1:
        return results
    return loop(results, 1, wide * group, n_fresh - wide * group)


@engine_jit(static_argnames=("integrator", "first_integrator"))
def batch_step(
    params: ModelParams,
    state: EnvState,
    action: jnp.ndarray,
    integrator: Integrator = env_step.DEFAULT_INTEGRATOR,
    first_integrator: Integrator | None = FIRST,
) -> tuple[EnvState, jnp.ndarray, jnp.ndarray, jnp.ndarray]:
    """`step.step` for B runners at once: (state, obs (B, 41), reward (B,), done (B,)).

    A runner's first step after reset (step count 0), and a step whose result was non-finite,
    use `first_integrator` as `step.step` does. Under `vmap` a `lax.cond` would run both
    schemes for every runner, so instead every runner takes `integrator`, and those to redo
    are redone with `first_integrator` and scattered back: on CPU in loops (`redo_group`), on
    other backends gathered into the smallest bucket of `bucket_sizes(B)` that holds them,
    picked by `lax.switch` so only that branch runs. Same numbers as `step.step` per runner.
    """
    _check_action_shape(state, action)
    env_step.check_float_dtype(params, state, "the state")
    out = _single_step(integrator)(params, state, action)
    if first_integrator is None or first_integrator == integrator:
        return out
    batch = state.q.shape[0]
    # a non-finite result, not caused by a non-finite action (`step.step` redoes only those)
    valid_action = env_step.finite_actions(jnp.asarray(action, state.q.dtype))
    diverged = out[3] & (out[2] == env_step.INTEGRATOR_FAILURE_REWARD) & valid_action
    fresh = ((state.step_count == 0) | diverged) & ~state.done
    n_fresh = jnp.sum(fresh)
    order = jnp.argsort(~fresh, stable=True)  # fresh runners first
    first_step = _single_step(first_integrator)

    def redo(k: int) -> Callable[[Any], Any]:
        def run(results: Any) -> Any:
            idx = order[:k]
            sub = first_step(params, jax.tree.map(lambda a: a[idx], state), action[idx])
            valid = jnp.arange(k) < n_fresh  # bucket rows beyond the fresh ones keep theirs
            return _scatter_redone(results, sub, idx, valid, idx)

        return run

    group = redo_group(batch, dtype=state.q.dtype)
    if group is not None:
        return _redo_in_loops(first_step, params, state, action, order, n_fresh, out, group)
    sizes = (0, *bucket_sizes(batch))
    branches = [(lambda r: r)] + [redo(k) for k in sizes[1:]]
    which = jnp.searchsorted(jnp.asarray(sizes), n_fresh)  # smallest bucket >= n_fresh
    return jax.lax.switch(which, branches, out)


@engine_jit(static_argnames=("batch",))
def reset_from_pool(params: ModelParams, pool: CoursePool, key: jax.Array, batch: int) -> EnvState:
    """`batch` runners reset on courses picked uniformly at random from `pool`."""
    index = jax.random.randint(key, (batch,), 0, pool.psoas.shape[0])
    dtype = params.default.q.dtype
    return batch_reset(params, pool.obstacles[index].astype(dtype), pool.psoas[index].astype(dtype))


def _is_batched(state: EnvState) -> bool:
    return state.q.ndim == 2  # a shape, not a value: static under jit


def _select(mask: jnp.ndarray, on_true: Any, on_false: Any) -> Any:
    """Row-wise `where` over two pytrees whose leaves share the leading axis of `mask`."""

    def pick(a: jnp.ndarray, b: jnp.ndarray) -> jnp.ndarray:
        m = jnp.reshape(mask, mask.shape + (1,) * (a.ndim - mask.ndim))
        return jnp.where(m, a, b)

    return jax.tree.map(pick, on_true, on_false)


def _step_any(
    params: ModelParams,
    state: EnvState,
    action: jnp.ndarray,
    integrator: Integrator,
    first_integrator: Integrator | None,
) -> tuple[EnvState, jnp.ndarray, jnp.ndarray, jnp.ndarray]:
    if _is_batched(state):
        return batch_step(params, state, action, integrator, first_integrator)
    return env_step.step(params, state, action, integrator, first_integrator)


def _observe_any(params: ModelParams, state: EnvState) -> jnp.ndarray:
    if _is_batched(state):
        return batch_observe(params, state)
    return env_step.observe(params, state)


def _check_action_shape(state: EnvState, action: jnp.ndarray) -> None:
    """Refuse actions that are not one row of excitations per runner (a clear error instead
    of a broadcasting error deep inside the traced step); shapes only, so jit-safe."""
    expected = (*jnp.shape(state.q)[:-1], N_EXCITATIONS)
    if jnp.shape(action) != expected:
        raise ValueError(
            f"actions must have shape {expected} (one row of {N_EXCITATIONS} excitations per "
            f"runner), got {jnp.shape(action)}"
        )


def _check_obstacle_rows(state: EnvState, obstacles: jnp.ndarray, what: str) -> None:
    """Refuse restart courses whose padded obstacle rows differ from the state's (a clear error
    instead of a shape mismatch deep inside the traced step); shapes only, so jit-safe."""
    rows, expected = jnp.shape(obstacles)[-2:], jnp.shape(state.obstacles)[-2:]
    if rows != expected:
        raise ValueError(
            f"{what}'s obstacle rows {rows} differ from the state's {expected}: build both "
            "with the same `course_arrays` slots"
        )


def _check_steps(steps: Any) -> None:
    if isinstance(steps, bool) or not isinstance(steps, int | np.integer) or steps < 0:
        raise ValueError(f"steps must be an int >= 0 (control steps), got {steps!r}")


def _check_reset_state(params: ModelParams, state: EnvState, reset_state: EnvState) -> None:
    """A restart state must hold one runner per runner of `state` (a batch of B rows for a
    batch of B: a single row would restart every runner on one course) and the model's floats."""
    _check_obstacle_rows(state, reset_state.obstacles, "reset_state")
    runners, expected = jnp.shape(reset_state.q)[:-1], jnp.shape(state.q)[:-1]
    if runners != expected:
        raise ValueError(
            f"reset_state holds runners of shape {runners} but the state {expected}: one "
            "restart row per runner"
        )
    env_step.check_float_dtype(params, reset_state, "reset_state")


@engine_jit(static_argnames=("integrator", "first_integrator"))
def autoreset_step(
    params: ModelParams,
    state: EnvState,
    action: jnp.ndarray,
    reset_state: EnvState,
    integrator: Integrator = env_step.DEFAULT_INTEGRATOR,
    max_episode_steps: int | jnp.ndarray = env_step.TIMESTEP_LIMIT,
    first_integrator: Integrator | None = FIRST,
) -> AutoresetStep:
    """One step with same-step autoreset (single runner or batch; `reset_state` alike).

    terminated = the pelvis fell below 0.65 m or the integrator failed (reward −500);
    truncated = `max_episode_steps` steps were taken, or the engine's own 1000-step limit ended
    the episode without a fall (the flags of gymnasium's ``make`` + ``TimeLimit``). A runner whose
    episode ended (either flag) continues as its row of `reset_state`. A runner whose episode
    had ended before this call (a state from a `rollout` without resets) only restarts: reward
    0, neither flag, so that its ending is not counted twice. `max_episode_steps` is a traced
    value: changing it does not recompile.
    """
    _check_action_shape(state, action)
    _check_reset_state(params, state, reset_state)
    new, obs, reward, done = _step_any(params, state, action, integrator, first_integrator)
    failed = done & (reward == env_step.INTEGRATOR_FAILURE_REWARD)
    ending = done & ~state.done
    terminated = ending & ((obs[..., PELVIS_Y] < env_step.FALL_HEIGHT_M) | failed)
    truncated = ((new.step_count >= max_episode_steps) | (ending & ~terminated)) & ~state.done
    ended = terminated | truncated | state.done
    next_state = _select(ended, reset_state, new)
    next_obs = _select(ended, _observe_any(params, reset_state), obs)
    return AutoresetStep(next_state, next_obs, reward, terminated, truncated, obs)


def _outside_one_kernel(value: jnp.ndarray) -> jnp.ndarray:
    """`value` (a scalar) as it is, bit for bit (NaN included), passed through a two-element
    sort: XLA's CPU backend compiles a loop into one kernel only if nothing in it is a sort, a
    scatter or a library call (`loop_kernels.SMALL_LOOP_BYTES`). A single runner's rollout scan
    would otherwise become one: no faster (1.01x), ~11-18 s more compile time (2026-12-05
    session 36); the substep loops inside it stay single kernels. Used on CPU only."""
    return jnp.sort(jnp.stack([value, jnp.full_like(value, -jnp.inf)]))[1]


@engine_jit(static_argnames=("policy_fn", "steps", "integrator", "first_integrator"))
def rollout(
    params: ModelParams,
    state: EnvState,
    policy_fn: PolicyFn,
    key: jax.Array,
    steps: int,
    integrator: Integrator = env_step.DEFAULT_INTEGRATOR,
    reset_state: EnvState | None = None,
    reset_pool: CoursePool | None = None,
    max_episode_steps: int | jnp.ndarray = env_step.TIMESTEP_LIMIT,
    first_integrator: Integrator | None = FIRST,
) -> tuple[EnvState, Transition]:
    """Run `policy_fn` for `steps` control steps in one `lax.scan` (one device program).

    `state` is one runner or a batch (leading axis B); ``policy_fn(obs, key) -> action`` sees the
    observations ((41,) or (B, 41)) and a fresh key each step and must be jax-traceable (it is a
    static argument: pass the same function object to reuse the compiled rollout). Without
    `reset_state` a finished runner stays frozen (reward 0); with it, runners that finish continue
    as their row of `reset_state` (same-step autoreset; `done` then marks terminated or
    truncated); with `reset_pool` (batched states only) they continue on a course drawn at random
    from the pool each step, Brax-style (`max_episode_steps`, traced, then also ends episodes
    as truncated). Returns the final state and the `Transition`s stacked
    along axis 0 (T = steps). Each step splits the carried key into (next carry, the policy's
    key, the reset draw's key).
    """
    _check_steps(steps)  # (the steps it takes check the state, the actions and a reset_state)
    if reset_state is not None and reset_pool is not None:
        raise ValueError("pass reset_state or reset_pool, not both")
    if reset_pool is not None and not _is_batched(state):
        raise ValueError("reset_pool needs a batched state (leading axis B)")
    if reset_pool is not None:
        _check_obstacle_rows(state, reset_pool.obstacles, "reset_pool")
    obs0 = _observe_any(params, state)

    def body(carry: tuple[EnvState, jnp.ndarray, jax.Array], _: None) -> tuple[Any, Transition]:
        s, obs, k = carry
        k, sub, pick = jax.random.split(k, 3)
        action = policy_fn(obs, sub)
        restart = reset_state
        if reset_pool is not None:
            restart = reset_from_pool(params, reset_pool, pick, s.q.shape[0])
        if restart is None:
            s_next, next_obs, reward, done = _step_any(
                params, s, action, integrator, first_integrator
            )
            # A frozen runner's step says done too; the transition marks only the step at
            # which the episode ended, so that counting done counts episodes.
            done = done & ~s.done
            obs_next = next_obs
        else:
            r = autoreset_step(
                params, s, action, restart, integrator, max_episode_steps, first_integrator
            )
            s_next, obs_next, reward = r.state, r.obs, r.reward
            done, next_obs = r.terminated | r.truncated, r.final_obs
        if not _is_batched(state) and jax.default_backend() == "cpu":
            reward = _outside_one_kernel(reward)
        return (s_next, obs_next, k), Transition(obs, action, reward, done, next_obs)

    (final, _, _), traj = jax.lax.scan(body, (state, obs0, key), None, length=steps)
    return final, traj
