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
