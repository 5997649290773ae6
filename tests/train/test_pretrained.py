"""The shipped pretrained runner (a planner around the shipped cruiser) loads, and runs a short
episode in the OpenSim engine."""

from __future__ import annotations

import json

import numpy as np

from l2run.train.evaluate import (
    load_policy,
    pretrained_cruiser_path,
    pretrained_path,
    pretrained_walker_path,
)
from l2run.train.gait_search import controller, load_controller_policy


def test_pretrained_runner_is_the_planner_around_the_shipped_cruiser():
    from l2run.train.planner import PlannerPolicy, PlannerSettings

    path = pretrained_path()
    data = json.loads(path.read_text())
    assert data["kind"] == "planner" and path.parent / data["base"] == pretrained_cruiser_path()
    runner = load_controller_policy(path)
    assert isinstance(runner, PlannerPolicy)
    np.testing.assert_array_equal(
        runner.params, load_controller_policy(pretrained_cruiser_path()).params
    )
    # the file spells out every setting, so a changed default cannot change the runner
    assert set(data["settings"]) == set(PlannerSettings.__dataclass_fields__)
    assert runner.settings == PlannerSettings.from_dict(data["settings"])
    for key in ("description", "evaluated"):
        assert key in data["meta"], key


def test_pretrained_cruiser_is_shipped_with_its_config():
    path = pretrained_cruiser_path()
    assert path.is_file(), f"missing {path}"
    data = json.loads(path.read_text())
    module, _policy_cls = controller(data["kind"])  # a hand-designed controller's file
    # a walker file may predate groups added since (they load with neutral values appended)
    assert len(data["params"]) <= module.N_PARAMS
    assert load_controller_policy(path).params.shape == (module.N_PARAMS,)
    meta = data["meta"]
    # the command, seed and budget that trained it travel with the weights
    for key in ("command", "seed", "engine", "difficulty", "max_env_steps"):
        assert key in meta, key
    assert path.stat().st_size < 50_000  # a small weights file


def test_shipped_runner_crosses_obstacles_as_the_shipped_walker():
    """The runner is a cruiser whose walker part (the obstacle phase) is the shipped walker
    with a hold added (stage 21): what the README's walker tables and the residual PPO base
    ("pretrained") describe. The shipped walker itself has the neutral hold."""
    from l2run.train import cruiser, walker

    runner = load_controller_policy(pretrained_cruiser_path())
    shipped_walker = load_controller_policy(pretrained_walker_path())
    assert (runner.kind, shipped_walker.kind) == (cruiser.KIND, walker.KIND)  # by each file's kind
    own, base = (
        walker.unpack(runner.params[: walker.N_PARAMS]),
        walker.unpack(shipped_walker.params),
    )
    for name, values in own.items():
        if name != "hold":
            np.testing.assert_array_equal(values, base[name], err_msg=name)
    np.testing.assert_array_equal(base["hold"], walker.NO_HOLD)
    assert own["hold"][0] > 0.0  # the runner waits for a high foot


def test_pretrained_runner_runs_a_short_episode():
    import gymnasium as gym

    import l2run  # noqa: F401

    policy = load_policy("pretrained")
    env = policy.wrap(gym.make("l2run/Run-v0", engine="opensim"))
    obs, _ = env.reset(seed=1, options={"difficulty": 2})
    policy.reset()
    xs = [obs[1]]
    for _ in range(60):
        action = policy.act(obs)
        assert action.shape == (18,) and np.all((action >= 0) & (action <= 1))
        obs, _r, terminated, truncated, _ = env.step(action)
        xs.append(obs[1])
        if terminated or truncated:
            break
    env.close()
    assert np.all(np.isfinite(xs))
    assert len(xs) > 10


def test_pretrained_cruiser_runs_alike_in_opensim_and_the_jax_engine():
    """The planner's cruiser closed loop for 3 s (seed 1, difficulty 2), through `run_episode`
    as `l2run evaluate` runs it: the JAX engine's default scheme (`imex_stiff` x 10, which the
    walker was tuned on) and OpenSim keep the runner up and agree on the distance covered to
    0.3 m (the gait's phase drifts between engines, the running does not)."""
    import pytest

    pytest.importorskip("jax")
    from l2run.train.evaluate import run_episode

    steps = 300
    runner = str(pretrained_cruiser_path())
    runs = {e: run_episode(runner, e, 2, 1, max_steps=steps) for e in ("opensim", "jax")}
    for engine, run in runs.items():
        assert run.error is None, f"{engine}: {run.error}"
        assert not run.fell and run.steps == steps, f"{engine}: the runner fell"
    assert runs["opensim"].distance > 2.0  # it ran, it did not stand
    assert runs["jax"].distance == pytest.approx(runs["opensim"].distance, abs=0.3)
