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
