"""`gymnasium.make_vec("l2run/Run-v0", engine="jax")`: shapes, same-step autoreset, and
step-for-step agreement with single `gymnasium.make("l2run/Run-v0", engine="jax")` envs.

Small N and short episodes (`max_episode_steps`) keep the JIT compilations and runs short.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode

import l2run  # noqa: F401  (registers l2run/Run-v0)
from l2run.course import generate_course
from l2run.engines.jax.integrate import Integrator
from l2run.observation import PELVIS_Y

N = 2
SHORT_EPISODE = 4  # steps: truncation (and so autoreset) inside a short test
RTOL, ATOL = 1e-9, 1e-12  # batched vs single XLA programs may round differently
FALL_HEIGHT_M = 0.65
# One stable scheme for every step keeps the compiled program small (one integrator body);
# the engine's defaults (`imex_stiff` + its graded first step) are checked by the slow test below.
TEST_INTEGRATOR = Integrator("linearly_implicit_euler", 40, 1.2)
FAST = {"integrator": TEST_INTEGRATOR, "first_integrator": None}


@pytest.fixture(scope="module")
def envs():
    """A vector env shared by the module (one compilation)."""
    env = gym.make_vec(
        "l2run/Run-v0",
        num_envs=N,
        engine="jax",
        max_episode_steps=SHORT_EPISODE,
        **FAST,
    )
    yield env
    env.close()


def _actions(rng: np.random.Generator, n: int = N) -> np.ndarray:
    return rng.uniform(0.0, 1.0, (n, 18)).astype(np.float32)


def test_make_vec_gives_the_jax_vector_env_with_batched_spaces(envs) -> None:
    from l2run.env.vector import RunVectorEnv

    assert isinstance(envs.unwrapped, RunVectorEnv)
    assert envs.num_envs == N
    assert envs.metadata["autoreset_mode"] == AutoresetMode.SAME_STEP
    assert envs.single_observation_space.shape == (41,)
    assert envs.observation_space.shape == (N, 41)
    assert envs.action_space.shape == (N, 18) and envs.action_space.dtype == np.float32

    obs, info = envs.reset(seed=3)
    assert obs.shape == (N, 41) and obs.dtype == np.float64
    assert envs.observation_space.contains(obs)
    assert info["_course"].all() and len(info["course"]) == N

    obs, reward, terminated, truncated, info = envs.step(envs.action_space.sample())
    assert obs.shape == (N, 41) and obs.dtype == np.float64
    assert reward.shape == (N,) and reward.dtype == np.float64
    assert terminated.shape == truncated.shape == (N,)
    assert terminated.dtype == truncated.dtype == np.bool_
    assert set(info["reward_terms"]) >= {"forward", "ligament_penalty"}


def test_seeds_give_runner_courses_as_the_single_env_draws_them(envs) -> None:
    _, info = envs.reset(seed=11)
    courses = info["course"]
    for i in range(N):
        assert courses[i] == generate_course(np.random.RandomState(11 + i), 2, 3, seed=11 + i)
    # Different seeds, different courses (obstacles and psoas).
    assert not np.array_equal(courses[0].obstacles, courses[1].obstacles)
    assert courses[0].psoas != courses[1].psoas
    # An explicit list of seeds; equal seeds give equal runners.
    obs, info = envs.reset(seed=[5, 5])
    assert info["course"][0] == info["course"][1]
    np.testing.assert_array_equal(obs[0], obs[1])


def test_autoreset_happens_exactly_at_episode_end(envs) -> None:
    obs0, info0 = envs.reset(seed=0)
    rng = np.random.default_rng(0)
    prev = obs0
    for k in range(1, SHORT_EPISODE + 2):
        obs, reward, terminated, truncated, info = envs.step(_actions(rng))
        ended = terminated | truncated
        if k < SHORT_EPISODE:
            assert not ended.any() and "final_obs" not in info
        elif k == SHORT_EPISODE:
            assert truncated.all() and not terminated.any()
            assert info["_final_obs"].all() and info["_final_info"].all()
            # As SyncVectorEnv's SAME_STEP: the ended step's reward terms are in final_info,
            # the top level holds the reset's info (the course), no terms (no runner goes on).
            assert "reward_terms" not in info and info["_course"].all()
            terms = info["final_info"]["reward_terms"]
            assert terms["_forward"].all() and "error" not in info["final_info"]
            # The episode's last observation comes back in info; obs starts the next episode,
            # on the next course of each runner's stream, from the default pose.
            for i in range(N):
                final = info["final_obs"][i]
                assert final.shape == (41,) and not np.array_equal(final, obs[i])
                np.testing.assert_allclose(
                    reward[i], terms["forward"][i] + terms["ligament_penalty"][i], rtol=1e-12
                )
                rs = np.random.RandomState(i)
                generate_course(rs, 2, 3)
                assert info["course"][i] == generate_course(rs, 2, 3)
            np.testing.assert_array_equal(obs[:, :36], obs0[:, :36])  # default pose again
        else:
            assert not ended.any() and info["_reward_terms"].all()
            assert not np.array_equal(obs, prev)
            np.testing.assert_allclose(
                reward,
                info["reward_terms"]["forward"] + info["reward_terms"]["ligament_penalty"],
                rtol=1e-12,
            )
        prev = obs


def test_bad_actions_raise_and_change_nothing(envs) -> None:
    obs0, _ = envs.reset(seed=0)
    for bad in (
        np.zeros((N, 17)),
        np.full((N, 18), np.nan),
        np.zeros(18),
        np.full((N, 18), "0.5"),
        np.ones((N, 18), bool),
    ):
        with pytest.raises(ValueError):
            envs.step(bad)
    with pytest.raises(ValueError):
        envs.reset(options={"level": 3})
    for seed in (1.5, True, "1"):
        with pytest.raises(ValueError, match="seed must be"):
            envs.reset(seed=seed)
    # Unchanged: the first step from here equals the first step from a fresh reset.
    a = _actions(np.random.default_rng(1))
    after_errors = envs.step(a)[0]
    envs.reset(seed=0)
    np.testing.assert_array_equal(envs.step(a)[0], after_errors)


def test_runners_reproduce_single_runs_with_their_seeds(envs) -> None:
    """Runner i reset with seed s + i equals one runner stepped alone (`step.step`, the
    function the single env's JaxEngine calls) on the courses that `RunEnv` draws from a
    RandomState seeded s + i — step for step, across an autoreset onto the stream's next course."""
    import jax.numpy as jnp

    from l2run.engines.jax import step as env_step
    from l2run.engines.jax.params import load_params
    from l2run.observation import pad_obstacles

    params, seed = load_params(), 21
    obs, _ = envs.reset(seed=seed)
    streams = [np.random.RandomState(seed + i) for i in range(N)]

    def start(i: int):
        course = generate_course(streams[i], 2, 3)
        return env_step.reset(params, jnp.asarray(pad_obstacles(course.obstacles)), course.psoas)

    singles = [start(i) for i in range(N)]
    for i in range(N):
        np.testing.assert_allclose(obs[i], env_step.observe(params, singles[i]), RTOL, ATOL)
    rng = np.random.default_rng(seed)
    for _ in range(2 * SHORT_EPISODE + 1):
        a = _actions(rng)
        obs, reward, terminated, truncated, info = envs.step(a)
        for i in range(N):
            singles[i], o, r, d = env_step.step(
                params, singles[i], a[i].astype(np.float64), TEST_INTEGRATOR, None
            )
            np.testing.assert_allclose(reward[i], r, rtol=RTOL, atol=ATOL)
            ended = bool(d) or int(singles[i].step_count) >= SHORT_EPISODE
            assert bool(terminated[i] or truncated[i]) == ended
            if ended:
                np.testing.assert_allclose(info["final_obs"][i], o, rtol=RTOL, atol=ATOL)
                singles[i] = start(i)
                o = env_step.observe(params, singles[i])
            np.testing.assert_allclose(obs[i], o, rtol=RTOL, atol=ATOL)


@pytest.mark.slow
def test_vector_env_reproduces_single_envs_step_for_step() -> None:
    """With the engine's default schemes: N runners with seeds s … s+N−1 against N
    `gymnasium.make("l2run/Run-v0", engine="jax")` envs with the same seeds and actions, across
    an autoreset (gymnasium's SyncVectorEnv with the same SAME_STEP mode)."""
    steps, limit, seed = 2 * SHORT_EPISODE + 1, SHORT_EPISODE, 21

    def single() -> gym.Env:
        return gym.make("l2run/Run-v0", engine="jax", max_episode_steps=limit)

    reference = gym.vector.SyncVectorEnv([single] * N, autoreset_mode=AutoresetMode.SAME_STEP)
    vector = gym.make_vec("l2run/Run-v0", num_envs=N, engine="jax", max_episode_steps=limit)
    try:
        ro, r_info = reference.reset(seed=seed)
        vo, v_info = vector.reset(seed=seed)
        _assert_infos_match(v_info, r_info)
        np.testing.assert_allclose(vo, ro, rtol=RTOL, atol=ATOL)
        rng = np.random.default_rng(seed)
        for _ in range(steps):
            a = _actions(rng)
            r_out, v_out = reference.step(a), vector.step(a)
            for r_arr, v_arr in zip(r_out[:4], v_out[:4], strict=True):
                np.testing.assert_allclose(v_arr, r_arr, rtol=RTOL, atol=ATOL)
            _assert_infos_match(v_out[4], r_out[4])
    finally:
        reference.close()
        vector.close()


def _assert_infos_match(vector: dict, reference: dict) -> None:
    """The vector env's info has SyncVectorEnv's keys and masks, and its values where masked
    (but the single env's "state", which the vector env leaves out)."""
    skip = {"state", "_state"}
    assert set(vector) == set(reference) - skip, (sorted(vector), sorted(reference))
    for key, ref in reference.items():
        if key in skip:
            continue
        got = vector[key]
        if isinstance(ref, dict):
            _assert_infos_match(got, ref)
        elif key.startswith("_"):
            np.testing.assert_array_equal(got, ref, err_msg=key)
        else:
            for i in np.flatnonzero(reference["_" + key]):
                if isinstance(ref[i], np.ndarray) or np.isscalar(ref[i]) and key != "error":
                    np.testing.assert_allclose(got[i], ref[i], rtol=RTOL, atol=ATOL)
                else:
                    assert got[i] == ref[i], (key, i, got[i], ref[i])


def test_a_fall_terminates_and_resets_in_the_same_step() -> None:
    """With no excitation the runners collapse; the step where a pelvis drops below 0.65 m is
    the step that terminates and resets that runner (same shapes as the fixture: no recompile)."""
    envs = gym.make_vec("l2run/Run-v0", num_envs=N, engine="jax", difficulty=0, **FAST)
    try:
        obs0, _ = envs.reset(seed=0)
        prev, fallen = obs0, np.zeros(N, dtype=bool)
        for _ in range(300):
            obs, _, terminated, truncated, info = envs.step(np.zeros((N, 18)))
            assert not truncated.any()
            for i in np.flatnonzero(terminated):
                assert prev[i, PELVIS_Y] >= FALL_HEIGHT_M
                assert info["final_obs"][i][PELVIS_Y] < FALL_HEIGHT_M
                np.testing.assert_array_equal(obs[i], obs0[i])  # difficulty 0: the same start
            fallen |= terminated
            assert np.all(obs[:, PELVIS_Y] >= FALL_HEIGHT_M)
            if fallen.all():
                break
            prev = obs
        else:
            pytest.fail("the unexcited runners did not fall within 3 s")
    finally:
        envs.close()


def test_float32_and_bad_arguments() -> None:
    # a numpy dtype as well as its name; the info's reward terms in float64, as the reward
    envs = gym.make_vec("l2run/Run-v0", num_envs=N, engine="jax", dtype=np.float32)
    try:
        obs, _ = envs.reset(seed=0)
        assert obs.dtype == np.float32 and envs.observation_space.dtype == np.float32
        _, reward, _, _, info = envs.step(np.full((N, 18), 0.2))
        terms = info["reward_terms"]
        assert terms["forward"].dtype == terms["ligament_penalty"].dtype == reward.dtype
        assert reward.dtype == np.float64
    finally:
        envs.close()
    for call in (lambda: envs.step(np.zeros((N, 18))), lambda: envs.reset(seed=0)):
        with pytest.raises(RuntimeError, match="closed"):
            call()
    for dtype in ("float16", None, np.int32):
        with pytest.raises(ValueError, match="dtype must be one of"):
            gym.make_vec("l2run/Run-v0", num_envs=N, engine="jax", dtype=dtype)
    with pytest.raises(ValueError):
        gym.make_vec("l2run/Run-v0", num_envs=0, engine="jax")
    with pytest.raises(ValueError):
        gym.make_vec("l2run/Run-v0", num_envs=N, engine="jax", integrator="rk5:3")


def test_opensim_engine_gives_a_same_step_sync_vector_env() -> None:
    envs = gym.make_vec("l2run/Run-v0", num_envs=N, engine="opensim", max_episode_steps=1)
    try:
        assert isinstance(envs, gym.vector.SyncVectorEnv)
        assert envs.metadata["autoreset_mode"] == AutoresetMode.SAME_STEP
        obs, _ = envs.reset(seed=0)
        assert obs.shape == (N, 41)
        # A bad row or seed is refused before any runner moves (runner 0 included).
        first = envs.envs[0].unwrapped.run_env
        course = first.course
        with pytest.raises(ValueError, match="seed must be in"):
            envs.reset(seed=2**32 - 1)
        bad = np.zeros((N, 18))
        bad[N - 1, 3] = np.nan
        for actions in (bad, np.zeros((N, 17)), np.zeros((N + 1, 18))):
            with pytest.raises(ValueError, match="actions"):
                envs.step(actions)
        assert first.course is course and first.istep == 0
        obs, _, _, truncated, info = envs.step(np.zeros((N, 18), np.float32))
        assert truncated.all() and info["_final_obs"].all()
    finally:
        envs.close()
