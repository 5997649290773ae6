"""`l2run demo`: the pretrained runner at difficulty 2 in OpenSim, distances and a video."""

from __future__ import annotations

import re

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
