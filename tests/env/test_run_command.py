"""`l2run run` prints an episode's distance and reward."""

from __future__ import annotations

from typer.testing import CliRunner

from l2run.cli import app


def test_run_prints_distance_and_reward() -> None:
    result = CliRunner().invoke(app, ["run", "--difficulty", "2", "--seed", "1", "--steps", "5"])
    assert result.exit_code == 0, result.output
    assert "distance:" in result.output and "reward:" in result.output
    assert "steps: 5" in result.output
    # the first step (a compile, with the JAX engine) is timed apart from the rest
    assert "first step" in result.output and "steps/s after the first" in result.output


def test_run_rejects_a_bad_difficulty() -> None:
    result = CliRunner().invoke(app, ["run", "--difficulty", "5", "--steps", "1"])
    assert result.exit_code != 0
    assert "difficulty" in result.output


def test_run_help() -> None:
    result = CliRunner().invoke(app, ["run", "--help"])
    assert result.exit_code == 0 and "--record" in result.output


def test_an_interrupted_run_reports_its_steps_and_keeps_its_recording(tmp_path, monkeypatch):
    """Ctrl-C mid-episode: the steps taken are reported and recorded, exit code 130."""
    from l2run.env.runenv import RunEnv
    from l2run.render.recording import load_recording

    real_step, calls = RunEnv.step, []

    def step(self, action):
        calls.append(1)
        if len(calls) == 6:
            raise KeyboardInterrupt
        return real_step(self, action)

    monkeypatch.setattr(RunEnv, "step", step)
    record = tmp_path / "run.npz"
    result = CliRunner().invoke(
        app, ["run", "--seed", "1", "--steps", "50", "--record", str(record)]
    )
    assert result.exit_code == 130, result.output
    assert "steps: 5 " in result.output and "interrupted after 5 steps" in result.output
    assert len(load_recording(record)) == 6  # the reset state and 5 steps


def test_run_refuses_a_record_path_it_cannot_write_before_running(tmp_path) -> None:
    (tmp_path / "episode.npz").write_bytes(b"a file, not a folder")
    result = CliRunner().invoke(
        app, ["run", "--steps", "5", "--record", str(tmp_path / "episode.npz" / "x.npz")]
    )
    assert result.exit_code == 2 and "cannot write" in result.output


def test_run_takes_osim_rl_15_obstacle_physics_on_opensim_only() -> None:
    args = ["run", "--seed", "1", "--steps", "3", "--obstacle-physics"]
    result = CliRunner().invoke(app, [*args, "osim-rl-1.5"])
    assert result.exit_code == 0, result.output
    assert "steps: 3" in result.output
    for extra, words in (
        (["osim-rl-1.5", "--engine", "jax"], "OpenSim engine only"),
        (["2017"], "obstacle_physics must be one of"),
    ):
        result = CliRunner().invoke(app, [*args, *extra], env={"COLUMNS": "300"})
        assert result.exit_code == 2, result.output
        assert words in result.output
