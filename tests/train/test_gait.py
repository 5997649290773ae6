"""The periodic gait controller: shapes, bounds, left/right symmetry, file round trip."""

from __future__ import annotations

import numpy as np
import pytest

from l2run.train.gait import INITIAL_PARAMS, N_PARAMS, GaitPolicy, excitations, unpack
from l2run.train.wrappers import mirror_action, mirror_observation


def test_excitations_are_18_values_in_unit_interval():
    rng = np.random.default_rng(0)
    for _ in range(50):
        params = INITIAL_PARAMS + rng.normal(scale=2.0, size=N_PARAMS)
        a = excitations(params, rng.normal(size=41) * 3, rng.uniform(0, 10))
        assert a.shape == (18,)
        assert np.all((a >= 0) & (a <= 1))


def test_half_period_later_the_mirrored_state_gets_the_mirrored_action():
    """The left leg runs half a period behind the right one: the controller is symmetric."""
    rng = np.random.default_rng(1)
    params = INITIAL_PARAMS + rng.normal(scale=0.1, size=N_PARAMS)
    period = unpack(params)["period"][0]
    for _ in range(20):
        obs, t = rng.normal(size=41), rng.uniform(0, 5)
        a = excitations(params, obs, t)
        b = excitations(params, mirror_observation(obs), t + period / 2)
        np.testing.assert_allclose(b, mirror_action(a), atol=1e-12)


def test_policy_counts_time_and_round_trips(tmp_path):
    policy = GaitPolicy(INITIAL_PARAMS.copy(), {"note": "test"})
    obs = np.zeros(41)
    first = [policy.act(obs) for _ in range(30)]
    policy.reset()
    again = [policy.act(obs) for _ in range(30)]
    np.testing.assert_array_equal(first, again)
    assert not np.allclose(first[0], first[25])  # the clock moves the targets
    path = tmp_path / "p.json"
    policy.save(path)
    loaded = GaitPolicy.load(path)
    np.testing.assert_array_equal(loaded.params, policy.params)
    assert loaded.meta == {"note": "test"}


def test_bad_parameters():
    with pytest.raises(ValueError, match="shape"):
        excitations(np.zeros(3), np.zeros(41), 0.0)


def test_jax_excitations_equal_numpy():
    jax = pytest.importorskip("jax")
    import jax.numpy as jnp

    import l2run.engines.jax.params  # noqa: F401  (enables float64 as the engine does)

    fn = jax.jit(jax.vmap(lambda x, o, t: excitations(x, o, t, xp=jnp)))
    rng = np.random.default_rng(2)
    xs = INITIAL_PARAMS + rng.normal(scale=0.3, size=(8, N_PARAMS))
    obs, ts = rng.normal(size=(8, 41)), rng.uniform(0, 5, size=8)
    expected = np.array([excitations(x, o, t) for x, o, t in zip(xs, obs, ts, strict=True)])
    np.testing.assert_allclose(np.asarray(fn(xs, obs, ts)), expected, atol=1e-12)


def test_search_improves_fitness_and_writes_its_files(tmp_path):
    """CMA-ES on a stand-in population evaluator whose 'distance' peaks at known parameters."""
    pytest.importorskip("cma")
    from l2run.train.gait_search import SearchConfig, search

    target = INITIAL_PARAMS + 0.2

    def population(xs, horizon, seed):
        distance = 5.0 - np.sum(((xs - target) / np.maximum(np.abs(INITIAL_PARAMS), 0.1)) ** 2, 1)
        return distance, np.full(len(xs), horizon)

    cfg = SearchConfig(max_env_steps=10**9, generations=25, popsize=10, horizon0=300)
    best = search(population, cfg, tmp_path, log=lambda _: None)
    start = population(INITIAL_PARAMS[None], 300, 0)[0][0]
    assert population(best[None], 300, 0)[0][0] > start + 0.5
    curve = (tmp_path / "curve.csv").read_text().splitlines()
    assert curve[0].startswith("generation,horizon") and len(curve) == 26
    # every candidate survived the horizon, so the horizon grew to the full episode
    assert curve[-1].split(",")[1] == "1000"
    assert GaitPolicy.load(tmp_path / "best.json").params.shape == (N_PARAMS,)


def test_a_fixed_horizon_keeps_the_best_record(tmp_path):
    """horizon_step 0: the horizon never grows, so the best fitness is never restarted and
    best.json holds the best candidate of all generations, not of the last one."""
    pytest.importorskip("cma")
    from l2run.train.gait_search import SearchConfig, search

    rng = np.random.default_rng(3)

    def population(xs, horizon, seed):  # pure noise: the record is some early lucky draw
        return rng.normal(size=len(xs)), np.full(len(xs), horizon)

    cfg = SearchConfig(max_env_steps=10**9, generations=12, popsize=6, horizon0=600, horizon_step=0)
    search(population, cfg, tmp_path, log=lambda _: None)
    rows = [r.split(",") for r in (tmp_path / "curve.csv").read_text().splitlines()[1:]]
    assert {r[1] for r in rows} == {"600"}
    best = [float(r[5]) for r in rows]
    assert best == list(np.maximum.accumulate(best))  # a running maximum, never reset
    meta = GaitPolicy.load(tmp_path / "best.json").meta
    assert meta["fitness"] == pytest.approx(best[-1], abs=1e-4)


def test_learning_curve_png(tmp_path):
    from l2run.train.curves import plot_search_curve

    header = "generation,horizon,evaluations,env_steps,wall_s,best_fitness,"
    header += "gen_best_distance,gen_mean_fitness\n"
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    a.write_text(header + "0,300,12,900,10,0.1,0.05,0.0\n1,300,24,1800,20,0.2,0.1,0.05\n")
    b.write_text(header + "0,300,12,800,9,0.3,0.2,0.1\n")
    png = plot_search_curve([a, b], tmp_path / "c.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="no generations"):
        (tmp_path / "e.csv").write_text(header)
        plot_search_curve(tmp_path / "e.csv", tmp_path / "e.png")
