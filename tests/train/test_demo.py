"""`l2run demo`: the pretrained runner at difficulty 2 in OpenSim, distances and a video."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from l2run.cli import app


@pytest.mark.slow  # a whole pretrained episode plus rendering its video
def test_demo_prints_distances_and_writes_a_video(tmp_path):
    video = tmp_path / "demo.gif"
    result = CliRunner().invoke(app, ["demo", "--seeds", "1", "--video", str(video)])
    assert result.exit_code == 0, result.output
    assert re.search(r"mean distance -?\d+\.\d+ m", result.output)
    assert video.is_file() and video.stat().st_size > 1000


def test_demo_rejects_bad_seeds():
    result = CliRunner().invoke(app, ["demo", "--seeds", "x"])
    assert result.exit_code != 0 and "seeds" in result.output


def _must_not_run(*args, **kwargs):
    raise AssertionError("the simulation ran although the video target was unusable")


def test_demo_refuses_a_folder_as_video_before_simulating(tmp_path, monkeypatch):
    import l2run.train.evaluate as evaluate

    monkeypatch.setattr(evaluate, "run_episode", _must_not_run)
    monkeypatch.setattr(evaluate, "evaluate", _must_not_run)
    folder = tmp_path / "demo.mp4"
    folder.mkdir()
    args = ["demo", "--seeds", "1", "--video", str(folder)]
    result = CliRunner().invoke(app, args, env={"COLUMNS": "300"})  # one line per message
    assert result.exit_code == 2, result.output
    assert "is a folder" in result.output


def test_demo_keeps_the_episode_when_the_video_cannot_be_written(tmp_path, monkeypatch):
    from tests.render.fake_engine import record_fake_episode

    import l2run.render.video as video_module
    import l2run.train.evaluate as evaluate
    from l2run.render.recording import load_recording

    def fake_episode(policy, engine, difficulty, seed, record=None, **kwargs):
        record_fake_episode(Path(record), steps=10)
        return evaluate.EpisodeResult(seed=seed, distance=4.25, reward=4.0, steps=10, fell=False)

    def fake_evaluate(policy, engine, difficulty, seeds, **kwargs):
        return [evaluate.EpisodeResult(s, 7.5, 7.0, 10, False) for s in seeds]

    def broken_write(recording, path, *args, **kwargs):
        raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(evaluate, "run_episode", fake_episode)
    monkeypatch.setattr(evaluate, "evaluate", fake_evaluate)
    monkeypatch.setattr(video_module, "write_video", broken_write)
    video = tmp_path / "demo.mp4"
    (tmp_path / "demo.npz").write_bytes(b"someone else's file")  # not to be overwritten
    result = CliRunner().invoke(app, ["demo", "--seeds", "1-2", "--video", str(video)])
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit), result.exception
    assert re.search(r"mean distance 5\.875 m", result.output), result.output  # both seeds
    kept = tmp_path / "demo-1.npz"
    assert len(load_recording(kept)) == 11
    assert (tmp_path / "demo.npz").read_bytes() == b"someone else's file"
    assert "Broken pipe" in result.output and str(kept) in result.output
