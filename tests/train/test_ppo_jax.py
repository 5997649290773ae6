"""JAX PPO: the pieces are right (observation statistics, log-probabilities), and a tiny run
on the JAX engine finishes, logs its throughput and saves a policy `l2run test` loads."""

from __future__ import annotations

import csv
import json
import re

import numpy as np
import pytest
from typer.testing import CliRunner

from l2run.train.ppo_jax import ObsStats, PPOConfig, PPOPolicy, _log_prob, update_stats


def test_running_statistics_equal_batch_statistics():
    rng = np.random.default_rng(0)
    data = rng.normal(2.0, 3.0, size=(300, 41))
    stats = ObsStats(np.zeros(41), np.ones(41), 1e-9)
    for chunk in np.split(data, 3):
        stats = update_stats(stats, chunk)
    np.testing.assert_allclose(stats.mean, data.mean(0), rtol=1e-6)
    np.testing.assert_allclose(stats.var, data.var(0), rtol=1e-6)


def test_gaussian_log_prob_matches_scipy():
    from scipy.stats import norm

    import l2run.engines.jax.params  # noqa: F401  (float64, as in training)

    rng = np.random.default_rng(1)
    mean, log_std, a = rng.normal(size=18), rng.normal(size=18) * 0.3, rng.normal(size=18)
    expected = norm.logpdf(a, mean, np.exp(log_std)).sum()
    assert float(_log_prob(mean, log_std, a)) == pytest.approx(expected, rel=1e-10)


def test_bad_config():
    with pytest.raises(ValueError, match="divisible"):
        PPOConfig(num_envs=3, num_steps=3, num_minibatches=2).validate()


@pytest.mark.slow  # compiling the rollout takes 1-3 min on 2 shared cores
def test_tiny_ppo_run_saves_a_policy_that_l2run_test_loads(tmp_path):
    from l2run.cli import app

    runner = CliRunner()
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps({"num_envs": 4, "num_steps": 8, "num_minibatches": 2}))
    out = tmp_path / "ppo"
    result = runner.invoke(
        app,
        ["train", "--algo", "ppo", "--engine", "jax", "--steps", "64", "--difficulty", "0",
         "--out", str(out), "--config", str(cfg)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader((out / "progress.csv").open()))
    assert len(rows) == 2 and float(rows[-1]["rollout_s"]) > 0
    policy = PPOPolicy(out)
    a = policy.act(np.zeros(41))
    assert a.shape == (18,) and np.all((a >= 0) & (a <= 1))
    result = runner.invoke(app, ["test", "--model", str(out), "--difficulty", "0"])
    assert result.exit_code == 0, result.output
    assert re.search(r"episode 1: distance", result.output)
