"""Short SB3 training runs finish, save a model, and `l2run test` loads and runs it."""

from __future__ import annotations

import json
import re
import time

import pytest
from typer.testing import CliRunner

from l2run.cli import app
from l2run.train.sb3 import SEED_DDPG, TrainConfig, build_model, load_run, make_env, train

runner = CliRunner()
# 120 OpenSim steps (~75 steps/s on an idle core) with learning after 50: a few s per algorithm.
SHORT = {"learning_starts": 50, "batch_size": 32, "buffer_size": 5_000}
WRAPPERS = {"ddpg": {"action_repeat": {"repeat": 2}}, "td3": {}, "sac": {"pelvis_relative": {}}}


@pytest.mark.parametrize("algo", ["ddpg", "td3", "sac"])
def test_short_training_saves_a_model_that_l2run_test_loads(tmp_path, algo):
    out = tmp_path / algo
    cfg_file = tmp_path / "cfg.json"
    cfg_file.write_text(json.dumps({"hyper": SHORT, "wrappers": WRAPPERS[algo]}))
    result = runner.invoke(
        app,
        ["train", "--algo", algo, "--steps", "120", "--difficulty", "0", "--out", str(out),
         "--config", str(cfg_file)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert (out / "model.zip").is_file()
    assert any((out / "tb").rglob("events.out.tfevents.*")), "no TensorBoard log"
    config, model = load_run(out)
    assert config.algo == algo and model.num_timesteps >= 120
    assert config.wrappers == WRAPPERS[algo]
    result = runner.invoke(
        app,
        ["test", "--model", str(out), "--episodes", "1", "--difficulty", "0", "--max-steps", "50"],
    )
    assert result.exit_code == 0, result.output
    assert re.search(r"episode 1: distance -?\d+\.\d+ m", result.output), result.output


def test_default_ddpg_is_the_seeds_network():
    """actor 3x32, critic 3x64, gamma 0.99, Adam 1e-3, as in the seed's keras-rl example."""
    import torch

    config = TrainConfig(algo="ddpg", steps=10)
    env = make_env("opensim", 0)
    try:
        model = build_model(config, env, tensorboard_log=None)
    finally:
        env.close()
    actor_linear = [m for m in model.actor.mu if isinstance(m, torch.nn.Linear)]
    critic_linear = [m for m in model.critic.qf0 if isinstance(m, torch.nn.Linear)]
    assert [m.out_features for m in actor_linear] == [32, 32, 32, 18]
    assert [m.out_features for m in critic_linear] == [64, 64, 64, 1]
    assert model.gamma == SEED_DDPG["gamma"] == 0.99
    assert isinstance(model.actor.optimizer, torch.optim.Adam)
    assert model.actor.optimizer.param_groups[0]["lr"] == 1e-3


def test_bad_training_arguments(tmp_path):
    result = runner.invoke(app, ["train", "--algo", "a2c", "--out", str(tmp_path)])
    assert result.exit_code != 0 and "algo" in result.output
    with pytest.raises(ValueError, match="difficulty"):
        train(TrainConfig(difficulty=4), tmp_path)
    result = runner.invoke(app, ["test", "--model", str(tmp_path / "missing")])
    assert result.exit_code != 0 and "unknown policy" in result.output


@pytest.mark.slow  # compiling the JAX engine's step takes minutes on 2 shared cores
def test_short_training_on_the_jax_engine(tmp_path):
    cfg_file = tmp_path / "cfg.json"
    cfg_file.write_text(json.dumps({"hyper": SHORT}))
    result = runner.invoke(
        app,
        ["train", "--algo", "sac", "--engine", "jax", "--steps", "80", "--difficulty", "0",
         "--out", str(tmp_path / "sac"), "--config", str(cfg_file)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    config, model = load_run(tmp_path / "sac")
    assert config.engine == "jax" and model.num_timesteps >= 80


def _short_config(steps: int, every: int) -> TrainConfig:
    # 4 env steps per agent step, so that episodes end (falls) within a few hundred steps
    return TrainConfig(
        algo="td3", steps=steps, hyper={**SEED_DDPG, **SHORT}, checkpoint_every=every,
        wrappers={"action_repeat": {"repeat": 4}}, progress_bar=False,
    )  # fmt: skip


def _monitor_rows(out) -> list[str]:
    lines = (out / "monitor.csv").read_text().splitlines()
    assert lines[0].startswith("#") and lines[1] == "r,l,t", lines[:2]
    assert not any(line.startswith("#") or line == "r,l,t" for line in lines[2:])
    return lines[2:]


def _buffer_size(out, record: dict) -> int:
    """Transitions in the replay buffer a resume record names."""
    _, model = load_run(out, out / record["checkpoint"])
    model.load_replay_buffer(out / record["replay_buffer"])
    return model.replay_buffer.size()


def _record(out) -> dict:
    return json.loads((out / "resume.json").read_text())


def _stop_after_checkpoint(monkeypatch, steps: int) -> None:
    """Stop the run like a kill right after its checkpoint at `steps` agent steps is saved."""
    import l2run.train.sb3 as sb3

    save = sb3._ResumableCheckpoints.save

    def then_stop(self, model, name, save_model):
        save(self, model, name, save_model)
        if model.num_timesteps == steps:
            raise KeyboardInterrupt

    monkeypatch.setattr(sb3._ResumableCheckpoints, "save", then_stop)


def test_a_stopped_run_resumes_from_its_last_checkpoint_with_its_replay_buffer(
    tmp_path, monkeypatch
):
    out = tmp_path / "run"
    _stop_after_checkpoint(monkeypatch, 80)  # its second
    with pytest.raises(KeyboardInterrupt):
        train(_short_config(120, 40), out)
    monkeypatch.undo()
    record = _record(out)
    assert record["checkpoint"] == "checkpoints/td3_80_steps.zip" and record["timesteps"] == 80
    assert not (out / "model.zip").exists()
    rows_before = _monitor_rows(out)
    # SB3 calls back before it stores the step's transition: a checkpoint's buffer holds the
    # transitions before its step
    assert _buffer_size(out, record) == 79
    # the wall time goes on from the record's (forged: an hour)
    (out / "resume.json").write_text(json.dumps({**record, "wall_s": 3600.0}))

    t0 = time.time()
    result = runner.invoke(
        app, ["train", "--resume", str(out), "--steps", "150"], catch_exceptions=False
    )
    resumed_s = time.time() - t0
    assert result.exit_code == 0, result.output
    config, model = load_run(out)
    assert config.steps == 150 and model.num_timesteps == 150
    # the buffer went on from the checkpoint's 79 transitions: 70 more, none lost or doubled
    record = _record(out)
    assert record["checkpoint"] == "model.zip" and _buffer_size(out, record) == 79 + 70
    meta = json.loads((out / "train_meta.json").read_text())
    assert meta["timesteps"] == 150 and 3600 < meta["wall_s"] <= 3600 + resumed_s + 0.1
    assert (out / "checkpoints" / "td3_120_steps.zip").is_file()
    buffers = sorted(p.name for p in (out / "checkpoints").glob("*.pkl"))
    assert buffers == ["replay_buffer_150_steps.pkl"]  # the earlier ones removed
    rows_after = _monitor_rows(out)
    assert rows_after[: len(rows_before)] == rows_before and len(rows_after) > len(rows_before)

    # a finished run has nothing left to do without a larger budget, and writes nothing
    files = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    for more in ([], ["--steps", "100"]):
        result = runner.invoke(app, ["train", "--resume", str(out), *more])
        assert result.exit_code == 0, result.output
        assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == files


def test_a_run_killed_between_a_buffer_and_its_record_resumes_from_the_record(
    tmp_path, monkeypatch
):
    """The buffer of the 80-step checkpoint is written, its record is not: the run resumes
    from the 40-step checkpoint with that checkpoint's own buffer."""
    import l2run.train.sb3 as sb3

    out = tmp_path / "run"
    write_record = sb3.write_resume_record

    def killed_at_80(run, checkpoint, buffer, timesteps, wall_s):
        if timesteps == 80:
            raise KeyboardInterrupt
        write_record(run, checkpoint, buffer, timesteps, wall_s)

    monkeypatch.setattr(sb3, "write_resume_record", killed_at_80)
    with pytest.raises(KeyboardInterrupt):
        train(_short_config(120, 40), out)
    monkeypatch.undo()
    record = _record(out)
    assert record["timesteps"] == 40 and _buffer_size(out, record) == 39
    result = runner.invoke(app, ["train", "--resume", str(out)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert _buffer_size(out, _record(out)) == 39 + 80


def test_a_run_killed_after_its_last_checkpoint_is_finished_by_resume(tmp_path, monkeypatch):
    out = tmp_path / "run"
    _stop_after_checkpoint(monkeypatch, 120)  # the last, before model.zip
    with pytest.raises(KeyboardInterrupt):
        train(_short_config(120, 40), out)
    monkeypatch.undo()
    assert not (out / "model.zip").exists()
    result = runner.invoke(app, ["train", "--resume", str(out)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    checkpoint = (out / "checkpoints" / "td3_120_steps.zip").read_bytes()
    assert (out / "model.zip").read_bytes() == checkpoint
    assert _record(out)["checkpoint"] == "model.zip"
    assert json.loads((out / "train_meta.json").read_text())["timesteps"] == 120
    assert load_run(out)[1].num_timesteps == 120


def test_resume_refuses_what_it_cannot_continue(tmp_path):
    out = tmp_path / "run"
    train(_short_config(60, 30), out)
    cfg = _short_config(90, 30)
    cfg.difficulty = 2
    with pytest.raises(ValueError, match=r"difficulty: the run's 0, now 2"):
        train(cfg, out, resume=True)
    record = _record(out)
    buffer = out / record["replay_buffer"]
    data = buffer.read_bytes()
    buffer.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="is not a readable replay buffer"):
        train(_short_config(90, 30), out, resume=True)
    buffer.unlink()
    with pytest.raises(ValueError, match="names checkpoints/replay_buffer_60_steps.pkl, which"):
        train(_short_config(90, 30), out, resume=True)
    for bad in ({"replay_buffer": "../elsewhere.pkl"}, {"timesteps": True}):
        (out / "resume.json").write_text(json.dumps({**record, **bad}))
        with pytest.raises(ValueError, match="is not a resume record"):
            train(_short_config(90, 30), out, resume=True)
    (out / "resume.json").unlink()
    with pytest.raises(ValueError, match="has no resume.json"):
        train(_short_config(90, 30), out, resume=True)
