"""The controller search's batched JAX evaluator equals episodes run one by one in RunEnv."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("jax")

from l2run.train import walker  # noqa: E402
from l2run.train.gait_search import jax_population_fn, runenv_episode_fn  # noqa: E402

INTEGRATOR = "imex_stiff:10"
HORIZON = 100  # one jitted chunk
SEED = 7


def _candidates() -> np.ndarray:
    rng = np.random.default_rng(0)
    return walker.INITIAL_PARAMS + np.abs(walker.INITIAL_PARAMS) * rng.normal(
        scale=0.1, size=(2, walker.N_PARAMS)
    )


def test_batched_walker_population_matches_runenv_episodes():
    xs = _candidates()
    population = jax_population_fn(2, 3, walker.KIND, INTEGRATOR)
    distances, steps = population(xs, HORIZON, SEED)
    episode = runenv_episode_fn("jax", 2, 3, walker.KIND, integrator=("imex_stiff", 10))
    for x, d, n in zip(xs, distances, steps, strict=True):
        want_d, want_n = episode(x, HORIZON, SEED)
        assert n == want_n
        assert d == pytest.approx(want_d, abs=1e-8)
    assert not np.isclose(distances[0], distances[1])  # the candidates really differ


@pytest.mark.slow
def test_action_noise_is_reproducible_and_changes_the_outcome():
    xs = _candidates()[:1]
    clean = jax_population_fn(0, 3, walker.KIND, INTEGRATOR)(xs, HORIZON, SEED)
    noisy_fn = jax_population_fn(0, 3, walker.KIND, INTEGRATOR, action_noise=0.1)
    first, again = noisy_fn(xs, HORIZON, SEED), noisy_fn(xs, HORIZON, SEED)
    np.testing.assert_array_equal(first[0], again[0])
    assert abs(first[0][0] - clean[0][0]) > 1e-6


def test_frozen_groups_stay_at_their_start_and_the_rest_is_searched(tmp_path):
    """With the walker's start phase frozen, every candidate keeps x0's start values (the
    stages tuned before it existed reproduce), the other parameters move; an unknown group
    is a clear error."""
    pytest.importorskip("cma")
    from l2run.train.gait_search import SearchConfig, free_mask, search

    start = ~free_mask(walker.PARAM_LAYOUT, ("start",))
    assert start.sum() == 2
    x0 = walker.INITIAL_PARAMS.copy()
    x0[start] = (-0.2, 0.8)
    seen = []

    def population(xs, horizon, seed):
        seen.append(np.array(xs))
        return -np.sum((xs - x0 - 0.1) ** 2, 1), np.full(len(xs), horizon)

    cfg = SearchConfig(generations=3, popsize=6, controller=walker.KIND, frozen=("start",))
    search(population, cfg, tmp_path, x0=x0, log=lambda _: None)
    xs = np.concatenate(seen)
    np.testing.assert_array_equal(xs[:, start], np.broadcast_to(x0[start], (len(xs), 2)))
    assert np.all(np.std(xs[:, ~start], axis=0) > 0)
    mean = walker.WalkerPolicy.load(tmp_path / "mean.json").params
    np.testing.assert_array_equal(mean[start], x0[start])
    with pytest.raises(ValueError, match="unknown parameter groups"):
        search(population, SearchConfig(controller=walker.KIND, frozen=("nope",)), tmp_path, x0)


def test_generation_seeds_draw_tall_courses_on_request():
    """Without tall episodes a generation's seeds are consecutive from seed + 1000 gen (the
    recipe of the committed stages); with them, the extra seeds' courses have an obstacle
    top at least tall_top_m high, and the plain ones are drawn as before."""
    from l2run.course import generate_course
    from l2run.train.gait_search import SearchConfig, generation_seeds, tallest_top

    plain = SearchConfig(seed=900000, difficulty=2, episodes_per_candidate=6)
    assert generation_seeds(plain, 3) == list(range(903000, 903006))
    cfg = SearchConfig(seed=900000, difficulty=2, episodes_per_candidate=6, tall_episodes=4)
    seeds = generation_seeds(cfg, 3)
    assert seeds[:2] == [903000, 903001] and len(set(seeds)) == 6
    tops = [tallest_top(generate_course(np.random.RandomState(s), 2, 3)) for s in seeds[2:]]
    assert min(tops) >= cfg.tall_top_m
    # the tall ones are rare: plain seeds mostly fall short of the threshold
    plain_tops = [tallest_top(generate_course(np.random.RandomState(s), 2, 3)) for s in range(40)]
    assert np.mean(np.array(plain_tops) >= cfg.tall_top_m) < 0.5
    assert tallest_top(generate_course(np.random.RandomState(1), 0, 3)) == 0.0
    with pytest.raises(ValueError, match="tall_episodes must be"):
        generation_seeds(SearchConfig(difficulty=2, tall_episodes=2), 0)
    with pytest.raises(ValueError, match="difficulty"):
        generation_seeds(SearchConfig(episodes_per_candidate=2, tall_episodes=1), 0)
    with pytest.raises(ValueError, match="lower tall_top_m"):
        generation_seeds(SearchConfig(difficulty=2, tall_episodes=1, tall_top_m=5.0), 0)


def test_train_command_rejects_a_config_whose_obstacle_count_disagrees(tmp_path):
    """--max-obstacles and a JSON config's max_obstacles must agree (no silent winner)."""
    import json

    from typer.testing import CliRunner

    from l2run.cli import app

    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps({"max_obstacles": 10}))
    args = ["train", "--algo", "walker", "--steps", "10", "--config", str(cfg)]
    result = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "run")])
    assert result.exit_code != 0 and "max_obstacles" in result.output
    assert not (tmp_path / "run").exists()


def test_fall_penalty_ranks_a_fall_below_any_speed_gain(tmp_path):
    """Candidates run further the larger their first parameter but fall (one step short of the
    horizon) past x0's value: by distance alone the search's best falls; with a fall penalty
    its best is one that survived, and curve.csv counts the generation-best's falls."""
    pytest.importorskip("cma")
    import csv

    from l2run.train.gait_search import SearchConfig, search

    x0 = walker.INITIAL_PARAMS.copy()

    def population(xs, horizon, seed):
        fell = xs[:, 0] > x0[0]
        return xs[:, 0] - x0[0], np.where(fell, horizon - 1, horizon)

    best = {}
    for penalty in (0.0, 100.0):
        out = tmp_path / f"penalty{penalty:g}"
        cfg = SearchConfig(
            generations=4, popsize=8, controller=walker.KIND, horizon_step=0, fall_penalty=penalty
        )
        best[penalty] = search(population, cfg, out, x0=x0, log=lambda _: None)
        rows = list(csv.DictReader((out / "curve.csv").open()))
        falls = [int(r["gen_best_falls"]) for r in rows]
        assert len(falls) == 4 and set(falls) <= {0, 1}
        if penalty:
            assert falls == [0, 0, 0, 0]
        else:
            assert max(falls) == 1
    assert best[0.0][0] > x0[0] >= best[100.0][0]
