from __future__ import annotations

from pathlib import Path

import numpy as np
import typer
from PIL import Image
from typer.testing import CliRunner

from l2run.render.commands import plot, render

app = typer.Typer()
app.command()(render)
app.command()(plot)
runner = CliRunner()


def test_registered_in_main_cli() -> None:
    from l2run import cli

    assert ("l2run.render.commands", "render", None) in cli._COMMANDS
    assert ("l2run.render.commands", "plot", None) in cli._COMMANDS


def test_render_png_gif_html_and_plot(recording_file: Path, tmp_path: Path) -> None:
    still = tmp_path / "still.png"
    result = runner.invoke(app, ["render", str(recording_file), "-o", str(still), "--frame", "3"])
    assert result.exit_code == 0, result.output
    assert np.asarray(Image.open(still)).shape == (360, 640, 3)
    gif = tmp_path / "run.gif"
    args = ["render", str(recording_file), "-o", str(gif), "--width", "200", "--height", "120"]
    result = runner.invoke(app, [*args, "--no-progress"])
    assert result.exit_code == 0, result.output
    assert Image.open(gif).size == (200, 120)
    page = tmp_path / "run.html"
    assert runner.invoke(app, ["render", str(recording_file), "-o", str(page)]).exit_code == 0
    assert page.read_text().startswith("<!DOCTYPE html>")
    result = runner.invoke(app, ["plot", str(recording_file)])
    assert result.exit_code == 0, result.output
    assert recording_file.with_suffix(".png").is_file()


def test_bad_inputs_give_clear_errors(recording_file: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["render", str(tmp_path / "none.npz"), "-o", "x.mp4"])
    assert result.exit_code == 1 and "no recording" in result.output
    result = runner.invoke(app, ["render", str(recording_file), "-o", str(tmp_path / "x.doc")])
    assert result.exit_code == 1 and "unknown output type" in result.output
    result = runner.invoke(app, ["render", str(recording_file), "-o", "x.png", "--frame", "999"])
    assert result.exit_code == 1 and "out of range" in result.output
    assert not (tmp_path / "x.doc").exists()


def test_damaged_recordings_and_unwritable_outputs_are_clear_errors(
    recording_file: Path, tmp_path: Path
) -> None:
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(recording_file.read_bytes()[:1000])
    text = tmp_path / "text.npz"
    text.write_text("not a recording")
    for bad, words in ((truncated, "not a readable .npz"), (text, "not an l2run recording")):
        result = runner.invoke(app, ["render", str(bad), "-o", str(tmp_path / "x.png")])
        assert result.exit_code == 1 and words in result.output, result.output
    blocked = tmp_path / "a-file"
    blocked.write_text("a file, not a folder")
    for out in ("x.png", "x.html", "x.gif"):
        result = runner.invoke(app, ["render", str(recording_file), "-o", str(blocked / out)])
        assert result.exit_code == 1 and "cannot write" in result.output, result.output
    result = runner.invoke(app, ["plot", str(recording_file), "-o", str(blocked / "p.png")])
    assert result.exit_code == 1 and "cannot write" in result.output, result.output


def test_frame_sizes_and_gif_delays_beyond_their_formats_are_refused(
    recording_file: Path, tmp_path: Path
) -> None:
    gif = str(tmp_path / "x.gif")
    result = runner.invoke(app, ["render", str(recording_file), "-o", gif, "--stride", "100000"])
    assert result.exit_code == 1 and "a GIF frame may last at most" in result.output
    big = ["--width", "100000", "--height", "100000"]
    result = runner.invoke(app, ["render", str(recording_file), "-o", gif, *big])
    assert result.exit_code == 1 and "at most 8192" in result.output
