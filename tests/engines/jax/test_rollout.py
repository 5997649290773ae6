"""The JAX engine's batched/functional API (`l2run.engines.jax.rollout`) against `step.step`.

Small batches and short horizons: every distinct shape is a separate XLA compilation.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from l2run.course import generate_course
from l2run.engines.jax import rollout as fx
from l2run.engines.jax import step as env_step
from l2run.engines.jax.params import load_params

N = 3
STEPS = 3
RTOL, ATOL = 1e-9, 1e-12  # vmapped vs unbatched XLA programs may round differently


@pytest.fixture(scope="module")
def params():
    return load_params()


@pytest.fixture(scope="module")
def batch(params):
    """N runners on N different difficulty-2 courses."""
    courses = [generate_course(np.random.RandomState(s), 2, 3, seed=s) for s in range(N)]
    obstacles, psoas = fx.course_arrays(courses)
    return fx.batch_reset(params, obstacles, psoas), obstacles, psoas


def _actions(steps: int, n: int | None = None, seed: int = 0) -> np.ndarray:
    shape = (steps, 18) if n is None else (steps, n, 18)
    return np.random.default_rng(seed).uniform(0.0, 1.0, shape)


def _row(tree, i: int):
    return jax.tree.map(lambda a: a[i], tree)


def _assert_trees_close(a, b, rtol=RTOL, atol=ATOL) -> None:
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=rtol, atol=atol)


def test_course_arrays_pad_and_keep_psoas() -> None:
    courses = [generate_course(np.random.RandomState(s), 2, 3) for s in (0, 1)]
    obstacles, psoas = fx.course_arrays(courses)
    assert obstacles.shape == (2, 20, 3) and psoas.shape == (2, 2)
    np.testing.assert_array_equal(obstacles[1, :3], courses[1].obstacles)
    assert tuple(psoas[0]) == courses[0].psoas


def test_batch_reset_rows_equal_single_resets(params, batch) -> None:
    state, obstacles, psoas = batch
    assert state.q.shape == (N, 9) and state.obstacles.shape == (N, 20, 3)
    for i in range(N):
        _assert_trees_close(_row(state, i), env_step.reset(params, obstacles[i], psoas[i]), 0, 0)


def test_vmapped_step_matches_single_steps(params, batch) -> None:
    state, _, _ = batch
    actions = _actions(STEPS, N)
    singles = [_row(state, i) for i in range(N)]
    for k in range(STEPS):
        state, obs, reward, done = fx.batch_step(params, state, actions[k])
        assert obs.shape == (N, 41) and reward.shape == (N,) and done.shape == (N,)
        for i in range(N):
            singles[i], o, r, d = env_step.step(params, singles[i], actions[k, i])
            np.testing.assert_allclose(obs[i], o, rtol=RTOL, atol=ATOL)
            np.testing.assert_allclose(reward[i], r, rtol=RTOL, atol=ATOL)
            assert bool(done[i]) == bool(d)
    for i in range(N):
        _assert_trees_close(_row(state, i), singles[i])
    # Different courses and psoas strengths: the runners' observations differ.
    assert not np.allclose(obs[0], obs[1])


def test_rollout_matches_python_loop_and_runs_without_jit(params, batch) -> None:
    state, _, _ = batch
    single = _row(state, 0)
    key = jax.random.PRNGKey(7)

    def policy(obs: jnp.ndarray, k: jax.Array) -> jnp.ndarray:
        # Depends on the observation and the key: both paths must thread them identically.
        noise = jax.random.uniform(k, (18,), obs.dtype)
        return jnp.clip(0.5 * noise + 0.1 * jnp.tanh(obs[:18]), 0.0, 1.0)

    final, traj = fx.rollout(params, single, policy, key, STEPS)
    assert traj.obs.shape == (STEPS, 41) and traj.action.shape == (STEPS, 18)
    assert traj.reward.shape == (STEPS,) and traj.done.dtype == jnp.bool_

    # The same steps by hand, with the same key stream.
    s, k = single, key
    obs = env_step.observe(params, s)
    for t in range(STEPS):
        k, sub, _ = jax.random.split(k, 3)  # rollout's key stream: carry, policy, resets
        a = policy(obs, sub)
        np.testing.assert_allclose(traj.obs[t], obs, rtol=RTOL, atol=ATOL)
        np.testing.assert_allclose(traj.action[t], a, rtol=RTOL, atol=ATOL)
        s, obs, r, d = env_step.step(params, s, a)
        np.testing.assert_allclose(traj.reward[t], r, rtol=RTOL, atol=ATOL)
        np.testing.assert_allclose(traj.next_obs[t], obs, rtol=RTOL, atol=ATOL)
    _assert_trees_close(final, s)

    # The jitted rollout and the same code run op by op give the same numbers.
    with jax.disable_jit():
        final_eager, traj_eager = fx.rollout(params, single, policy, key, STEPS)
    _assert_trees_close(traj_eager, traj)
    _assert_trees_close(final_eager, final)


def test_batched_rollout_with_autoreset(params, batch) -> None:
    state, _, _ = batch
    reset_state = state  # restart every runner from its first state, as Brax does
    limit = 2

    def policy(obs: jnp.ndarray, k: jax.Array) -> jnp.ndarray:
        return jax.random.uniform(k, obs.shape[:-1] + (18,), obs.dtype)

    # `rollout` ends episodes only at the engine's limits; drive autoreset_step directly with
    # a short step limit to see a reset inside the horizon.
    s = state
    first_obs = fx.batch_observe(params, state)
    key = jax.random.PRNGKey(0)
    for t in range(limit + 1):
        key, sub = jax.random.split(key)
        a = policy(first_obs, sub)
        r = fx.autoreset_step(params, s, a, reset_state, max_episode_steps=limit)
        assert r.obs.shape == (N, 41) and r.final_obs.shape == (N, 41)
        if t + 1 == limit:
            assert np.all(np.asarray(r.truncated)) and not np.any(np.asarray(r.terminated))
            # Reset in the same step: the next observation is the first one again ...
            np.testing.assert_allclose(r.obs, first_obs, rtol=0, atol=0)
            _assert_trees_close(r.state, reset_state, 0, 0)
            # ... and the episode's last observation comes back separately.
            assert not np.allclose(r.final_obs, first_obs)
        else:
            assert not np.any(np.asarray(r.truncated | r.terminated))
            np.testing.assert_allclose(r.obs, r.final_obs, rtol=0, atol=0)
        s = r.state

    final, traj = fx.rollout(params, state, policy, jax.random.PRNGKey(1), 2, reset_state=state)
    assert traj.obs.shape == (2, N, 41) and traj.reward.shape == (2, N)
    assert final.q.shape == (N, 9)


def test_course_pool_resets(params) -> None:
    pool = fx.course_pool(range(5), difficulty=2)
    assert pool.obstacles.shape == (5, 20, 3) and pool.psoas.shape == (5, 2)
    state = fx.reset_from_pool(params, pool, jax.random.PRNGKey(3), 4)
    assert state.q.shape == (4, 9)
    for i in range(4):  # every runner got one of the pool's courses
        assert any(np.array_equal(state.psoas[i], pool.psoas[k]) for k in range(5))
    with pytest.raises(ValueError):
        fx.rollout(
            params, _row(state, 0), lambda o, k: o[:18], jax.random.PRNGKey(0), 1, reset_pool=pool
        )


def test_float32_parameters_give_float32_runs(params, batch) -> None:
    _, obstacles, psoas = batch
    p32 = fx.cast_floats(params, jnp.float32)
    assert p32.tree.parent.dtype == params.tree.parent.dtype  # index arrays untouched
    s32 = env_step.reset(p32, obstacles[0], psoas[0])
    s64 = env_step.reset(params, obstacles[0], psoas[0])
    assert s32.q.dtype == jnp.float32
    action = _actions(1)[0]
    n32, o32, r32, _ = env_step.step(p32, s32, action)
    n64, o64, r64, _ = env_step.step(params, s64, action)
    assert o32.dtype == jnp.float32 and n32.q.dtype == jnp.float32
    np.testing.assert_allclose(o32, o64, rtol=1e-3, atol=1e-4)
