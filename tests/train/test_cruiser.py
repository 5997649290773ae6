"""The cruiser: the walker until the course is clear, then a blend to its cruise gait."""

from __future__ import annotations

import numpy as np
import pytest

from l2run.train import cruiser, walker
from l2run.train.cruiser import (
    CLEAR_MARGIN_M,
    CRUISE_SELECTOR,
    LAUNCH_START,
    N_CRUISE,
    T_CLEAR,
    CruiserPolicy,
    blend,
    control,
    from_walker,
    initial_memory,
)

WALKER = walker.N_PARAMS


def _obs(rng: np.random.Generator) -> np.ndarray:
    obs = rng.normal(scale=0.3, size=41)
    obs[list(walker.OBS_PSOAS)] = 1.0
    return obs


def _clear_obs(rng: np.random.Generator) -> np.ndarray:
    """An observation with no obstacle ahead (as the environment reports it: 100 m, r = 0)."""
    obs = _obs(rng)
    obs[walker.OBS_OBSTACLE_DX], obs[walker.OBS_OBSTACLE_Y], obs[walker.OBS_OBSTACLE_R] = (
        100.0,
        0.0,
        0.0,
    )
    return obs


def _moved(obs: np.ndarray, dx_m: float) -> np.ndarray:
    """`obs` with the pelvis, centre of mass and feet `dx_m` further along the ground."""
    obs = obs.copy()
    for i in (walker.OBS_PELVIS_X, walker.OBS_COM_X, *walker.OBS_TOES_X, *walker.OBS_TALUS_X):
        obs[i] += dx_m
    return obs


def _fast(rng: np.random.Generator) -> np.ndarray:
    """A cruiser whose cruise values differ from its walker's, switching 0.1 s after clear over
    0.2 s."""
    params = from_walker(walker.INITIAL_PARAMS, delay_s=0.1, ramp_s=0.2)
    params[WALKER : WALKER + N_CRUISE] *= 1.0 + rng.uniform(0.2, 0.5, N_CRUISE)
    return params


def test_a_cruiser_made_from_a_walker_is_that_walker():
    rng = np.random.default_rng(0)
    params = walker.INITIAL_PARAMS + rng.normal(scale=0.1, size=WALKER)
    cruise = from_walker(params, delay_s=0.0, ramp_s=0.05)
    memory = initial_memory()
    own = walker.initial_memory()
    longest_clear = 0.0
    for k in range(60):
        # Obstacles shown, then the body 20 m on with none ahead (past all of them).
        obs = _obs(rng) if k < 20 else _moved(_clear_obs(rng), 20.0)
        memory, a = control(cruise, memory, obs)
        own, b = walker.control(params, own, obs)
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(memory[:T_CLEAR], own)
        longest_clear = max(longest_clear, memory[T_CLEAR])
    assert longest_clear > 0.3  # the blend was fully on: equal values, the same walker


def test_blend_holds_the_walker_then_ramps_to_the_cruise_values():
    params = _fast(np.random.default_rng(1))
    own, cruise = params[:WALKER], params[WALKER : WALKER + N_CRUISE]
    np.testing.assert_array_equal(blend(params, 0.0), own)
    np.testing.assert_array_equal(blend(params, 0.1), own)  # the delay
    halfway = blend(params, 0.2)
    np.testing.assert_allclose(CRUISE_SELECTOR @ halfway, 0.5 * (CRUISE_SELECTOR @ own + cruise))
    done = blend(params, 5.0)
    np.testing.assert_allclose(CRUISE_SELECTOR @ done, cruise)
    untouched = CRUISE_SELECTOR.sum(0) == 0  # obstacle, start, trail, hold groups
    assert untouched.sum() == WALKER - N_CRUISE == 10  # 3 + 2 + 3 + 2
    np.testing.assert_array_equal(done[untouched], own[untouched])


def test_launch_values_start_the_run_and_fade_into_the_walker():
    rng = np.random.default_rng(7)
    params = _fast(rng)
    launch = slice(LAUNCH_START, LAUNCH_START + N_CRUISE)
    params[launch] *= 1.0 + rng.uniform(0.2, 0.5, N_CRUISE)
    params[-1] = 0.8  # launch time (s)
    own = params[:WALKER]
    np.testing.assert_allclose(CRUISE_SELECTOR @ blend(params, 0.0, 0.0), params[launch])
    quarter = blend(params, 0.0, 0.6)
    np.testing.assert_allclose(
        CRUISE_SELECTOR @ quarter, 0.75 * (CRUISE_SELECTOR @ own) + 0.25 * params[launch]
    )
    np.testing.assert_array_equal(blend(params, 0.0, 0.8), own)
    # In the controller the launch follows the walker's clock from reset.
    obs = _obs(rng)
    memory = initial_memory()
    _, a = control(params, memory, obs)
    _, b = walker.control(blend(params, 0.0, 0.0), walker.initial_memory(), obs)
    np.testing.assert_array_equal(a, b)
    memory[walker.MEMORY_LAYOUT.index("t_episode")] = 0.9
    _, a = control(params, memory, obs)
    _, b = walker.control(own, memory[:T_CLEAR], obs)
    np.testing.assert_array_equal(a, b)


def test_the_clear_clock_runs_only_with_nothing_ahead_and_both_heels_past():
    rng = np.random.default_rng(2)
    params = from_walker(walker.INITIAL_PARAMS)
    memory = initial_memory()
    memory[walker.MEMORY_SEEN] = (3.0, 0.05, 0.1)  # seen last step; the pelvis now passes it
    memory[T_CLEAR] = 0.0
    obs = _clear_obs(rng)
    far_edge = 3.0 + 0.1 + CLEAR_MARGIN_M
    obs[list(walker.OBS_TALUS_X)] = (far_edge + 0.2, far_edge - 0.01)  # left heel not yet
    memory, _ = control(params, memory, obs)
    np.testing.assert_array_equal(memory[walker.MEMORY_PASSED], (3.0, 0.05, 0.1))
    assert memory[T_CLEAR] == 0.0
    obs[list(walker.OBS_TALUS_X)] = (far_edge + 0.2, far_edge + 0.01)
    memory, _ = control(params, memory, obs)
    assert memory[T_CLEAR] == pytest.approx(0.01)
    memory, _ = control(params, memory, obs)
    assert memory[T_CLEAR] == pytest.approx(0.02)
    ahead = obs.copy()
    ahead[walker.OBS_OBSTACLE_DX], ahead[walker.OBS_OBSTACLE_R] = 2.0, 0.1
    memory, _ = control(params, memory, ahead)
    assert memory[T_CLEAR] == 0.0


def test_jax_control_equals_numpy():
    jax = pytest.importorskip("jax")
    import jax.numpy as jnp

    import l2run.engines.jax.params  # noqa: F401  (enables float64 as the engine does)

    fn = jax.jit(jax.vmap(lambda x, m, o: control(x, m, o, xp=jnp)))
    rng = np.random.default_rng(3)
    xs = np.stack([_fast(rng) for _ in range(6)])
    memory = np.stack([initial_memory() for _ in range(6)])
    memory[:, T_CLEAR] = rng.uniform(0.0, 0.5, 6)
    obs = np.stack([_clear_obs(rng) if i % 2 else _obs(rng) for i in range(6)])
    got_m, got_a = fn(xs, memory, obs)
    for i in range(6):
        want_m, want_a = control(xs[i], memory[i], obs[i])
        np.testing.assert_allclose(np.asarray(got_a[i]), want_a, atol=1e-12)
        np.testing.assert_allclose(np.asarray(got_m[i]), want_m, atol=1e-12)


def test_policy_files_round_trip_and_load_by_kind(tmp_path):
    from l2run.train.evaluate import load_policy
    from l2run.train.gait_search import start_params

    policy = CruiserPolicy(_fast(np.random.default_rng(4)), {"note": "test"})
    rng = np.random.default_rng(5)
    observations = [_clear_obs(rng) for _ in range(40)]
    first = [policy.act(o) for o in observations]
    policy.reset()
    np.testing.assert_array_equal(policy.memory, initial_memory())
    path = tmp_path / "c.json"
    policy.save(path)
    loaded = load_policy(str(path)).policy
    assert isinstance(loaded, CruiserPolicy) and loaded.meta == {"note": "test"}
    np.testing.assert_array_equal(first, [loaded.act(o) for o in observations])
    with pytest.raises(ValueError, match="shape"):
        CruiserPolicy(walker.INITIAL_PARAMS)  # a walker vector is not a cruiser's
    with pytest.raises(ValueError, match="not a walker"):
        walker.WalkerPolicy.load(path)
    # A cruiser search started from a walker file starts as that walker.
    walker.WalkerPolicy(walker.INITIAL_PARAMS).save(tmp_path / "w.json")
    x0 = start_params(tmp_path / "w.json", cruiser.KIND)
    np.testing.assert_array_equal(x0, from_walker(walker.INITIAL_PARAMS))
    np.testing.assert_array_equal(start_params(path, cruiser.KIND), policy.params)


def test_a_cruiser_file_from_before_the_hold_group_loads_and_runs_as_before(tmp_path):
    """A cruiser written before the walker's "hold" group (its walker part 2 values shorter,
    as the stage-19 runner) gets the neutral hold inserted after its walker part."""
    from l2run.train.controller_params import write_policy_file
    from l2run.train.gait_search import load_controller_policy

    params = _fast(np.random.default_rng(8))
    old = np.delete(params, np.arange(WALKER - walker.NO_HOLD.size, WALKER))
    write_policy_file(tmp_path / "old.json", cruiser.KIND, old, {})
    loaded = load_controller_policy(tmp_path / "old.json")
    assert isinstance(loaded, CruiserPolicy)
    np.testing.assert_array_equal(loaded.params, params)  # _fast's hold is the neutral one
    np.testing.assert_array_equal(walker.unpack(loaded.params[:WALKER])["hold"], walker.NO_HOLD)
    rng = np.random.default_rng(9)
    policy = CruiserPolicy(params)
    for obs in [_clear_obs(rng) for _ in range(30)]:
        np.testing.assert_array_equal(loaded.act(obs), policy.act(obs))
    with pytest.raises(ValueError, match="shape"):
        CruiserPolicy(old[:-1])


# Slow (~2 min on 2 CPUs, most of it compiling the cruiser's batched search program): the batched
# evaluator against RunEnv stays in the default run with the walker (test_gait_search), and the
# cruiser in the JAX engine with test_pretrained.
@pytest.mark.slow
def test_batched_cruiser_population_matches_runenv_episodes():
    """On flat ground the course is clear from the start: the cruise gait takes over within
    the horizon, identically in the batched search evaluator and in RunEnv."""
    pytest.importorskip("jax")
    from l2run.train.gait_search import jax_population_fn, runenv_episode_fn

    rng = np.random.default_rng(6)
    xs = np.stack([from_walker(walker.INITIAL_PARAMS, 0.1, 0.2), _fast(rng)])
    population = jax_population_fn(0, 3, cruiser.KIND, "imex_stiff:10")
    distances, steps = population(xs, 100, 7)
    episode = runenv_episode_fn("jax", 0, 3, cruiser.KIND, integrator=("imex_stiff", 10))
    for x, d, n in zip(xs, distances, steps, strict=True):
        want_d, want_n = episode(x, 100, 7)
        assert n == want_n
        assert d == pytest.approx(want_d, abs=1e-8)
    assert not np.isclose(distances[0], distances[1])  # the cruise gait changed the run
