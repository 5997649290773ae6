"""`l2run evaluate`: JSON schema, seed parsing, parallel == serial, Ray, bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from l2run.cli import app
from l2run.train.evaluate import EpisodeResult, evaluate, parse_seeds, run_episode

runner = CliRunner()


def test_parse_seeds():
    assert parse_seeds("3") == [3]
    assert parse_seeds("1-4") == [1, 2, 3, 4]
    assert parse_seeds("1,5, 7-8") == [1, 5, 7, 8]
    for bad in ("", "a", "5-2", "-1", "1-", "1.5"):
        with pytest.raises(ValueError, match="seeds"):
            parse_seeds(bad)


def test_json_schema_and_values_match_a_direct_episode():
    result = runner.invoke(
        app, ["evaluate", "--policy", "zero", "--difficulty", "2", "--seeds", "1-2", "--json"]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["engine"] == "opensim" and data["difficulty"] == 2
    assert [e["seed"] for e in data["episodes"]] == [1, 2]
    for e in data["episodes"]:
        assert set(e) >= {"seed", "distance", "reward", "steps", "fell"}
        assert isinstance(e["distance"], float) and isinstance(e["reward"], float)
        assert isinstance(e["steps"], int) and isinstance(e["fell"], bool)
        assert 0 < e["steps"] <= 1000
    assert data["summary"]["episodes"] == 2
    # The same episode run directly: identical numbers (the env is deterministic per seed).
    direct = run_episode("zero", "opensim", 2, 2)
    assert data["episodes"][1]["distance"] == direct.distance
    assert data["episodes"][1]["steps"] == direct.steps


def test_table_output():
    result = runner.invoke(app, ["evaluate", "--policy", "zero", "--seeds", "4"])
    assert result.exit_code == 0, result.output
    assert "mean distance" in result.output and "falls" in result.output


def test_two_workers_equal_serial():
    serial = evaluate("zero", "opensim", 2, [1, 3], workers=1)
    parallel = evaluate("zero", "opensim", 2, [1, 3], workers=2)
    assert parallel == serial
    assert all(isinstance(r, EpisodeResult) for r in parallel)


@pytest.mark.slow  # starting a local Ray instance takes ~25 s on 2 cores
def test_ray_local_equals_serial():
    pytest.importorskip("ray", reason="the 'ray' extra is not installed")
    serial = evaluate("zero", "opensim", 1, [2], workers=1)
    assert evaluate("zero", "opensim", 1, [2], ray_address="local") == serial


@pytest.mark.parametrize(
    "args, message",
    [
        (["--policy", "no/such/file.json"], "unknown policy"),
        (["--policy", "zero", "--difficulty", "7"], "difficulty"),
        (["--policy", "zero", "--engine", "bullet"], "engine"),
        (["--policy", "zero", "--seeds", "9-3"], "seeds"),
    ],
)
def test_bad_input_is_a_clear_error(args, message):
    result = runner.invoke(app, ["evaluate", *args])
    assert result.exit_code != 0
    assert message in result.output


def test_jax_integrator_option_runs_that_scheme_and_is_refused_for_opensim():
    pytest.importorskip("jax")
    from l2run.env.runenv import RunEnv
    from l2run.train.evaluate import evaluate, load_policy, pretrained_cruiser_path, run_episode

    with pytest.raises(ValueError, match="only be chosen for the jax engine"):
        evaluate("zero", "opensim", 2, [1], integrator="imex_stiff:10")
    with pytest.raises(ValueError, match="integrator"):
        evaluate("zero", "jax", 2, [1], integrator="no_such_scheme:3")
    steps = 40
    # Not the default (imex_stiff x 10): an option that were ignored would give other numbers.
    runner = str(pretrained_cruiser_path())
    got = run_episode(runner, "jax", 2, 1, max_steps=steps, integrator="imex_stiff:20")
    policy = load_policy(runner).policy
    env = RunEnv(visualize=False, engine="jax", integrator=("imex_stiff", 20))
    obs = env.reset(difficulty=2, seed=1)
    policy.reset()
    for _ in range(steps):
        obs, _r, _done, _info = env.step(policy.act(np.asarray(obs)))
    assert got.steps == steps
    assert got.distance == pytest.approx(float(obs[1]), abs=1e-9)


def test_obstacle_physics_option_reaches_the_environment_and_is_refused_for_jax():
    from l2run.env.runenv import RunEnv
    from l2run.train.evaluate import evaluate, run_episode

    with pytest.raises(ValueError, match="OpenSim engine only"):
        evaluate("zero", "jax", 2, [1], obstacle_physics="osim-rl-1.5")
    with pytest.raises(ValueError, match="obstacle_physics must be one of"):
        evaluate("zero", "opensim", 2, [1], obstacle_physics="2017")
    with pytest.raises(ValueError, match="max_obstacles <= 20"):  # before any episode
        evaluate("zero", "opensim", 2, [1], max_obstacles=21, obstacle_physics="osim-rl-1.5")
    # difficulty 0: osim-rl 1.5's three unused obstacle spheres at (0, -0.1) touch the toes,
    # so its run differs from the plain one, and equals RunEnv's with that physics
    steps = 20
    plain = run_episode("zero", "opensim", 0, 1, max_steps=steps)
    legacy = run_episode("zero", "opensim", 0, 1, max_steps=steps, obstacle_physics="osim-rl-1.5")
    env = RunEnv(obstacle_physics="osim-rl-1.5")
    obs = env.reset(difficulty=0, seed=1)
    start = obs[1]
    for _ in range(steps):
        obs, _r, _done, _info = env.step([0.0] * 18)
    env.close()
    assert legacy.distance == pytest.approx(obs[1] - start, abs=1e-12)
    assert abs(legacy.distance - plain.distance) > 1e-8


def test_max_steps_counts_environment_steps_under_action_repeat(monkeypatch):
    """A run trained with action_repeat 4 tested for 30 steps runs 30 environment steps, not
    the 32 its eighth repeated action would reach."""
    import numpy as np

    from l2run.train import evaluate as ev
    from l2run.train.wrappers import apply_wrappers

    class Repeating:
        def wrap(self, env):
            return apply_wrappers(env, {"action_repeat": {"repeat": 4}}, evaluation=True)

        def reset(self):
            pass

        def act(self, obs):
            return np.full(18, 0.3)

    monkeypatch.setattr(ev, "load_policy", lambda spec: Repeating())
    assert ev.run_episode("repeating", "opensim", 0, 1, max_steps=30).steps == 30


def test_workers_show_the_episodes_progress(capsys):
    from l2run.train.evaluate import evaluate

    evaluate("zero", "opensim", 0, [1, 2], workers=2, progress=True)
    err = capsys.readouterr().err
    assert "episodes: 100%" in err and "2/2" in err, err
