from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
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


BAD_OPTIONS = [  # each a clear error, never a traceback, a hang or a huge allocation
    (["--scale", "inf"], "--scale must be 0"),
    (["--scale", "1e300"], "--scale must be 0"),
    (["--scale", "1e-6"], "--scale must be 0"),
    (["--scale", "nan"], "--scale must be 0"),
    (["--speed", "nan"], "--speed must be between 0.01 and 100"),
    (["--speed", "inf"], "--speed must be between 0.01 and 100"),
    (["--speed", "1e-9"], "--speed must be between 0.01 and 100"),
    (["--speed", "0"], "--speed must be between 0.01 and 100"),
]


def test_bad_option_values_are_clear_errors_and_leave_no_file(
    recording_file: Path, tmp_path: Path
) -> None:
    for out in ("x.mp4", "x.gif", "x.png"):
        target = tmp_path / out
        for options, words in BAD_OPTIONS:
            result = runner.invoke(
                app, ["render", str(recording_file), "-o", str(target), *options]
            )
            assert result.exit_code == 1, (out, options, result.output)
            assert isinstance(result.exception, SystemExit), (out, options, result.exception)
            assert words in result.output, (out, options, result.output)
            assert not target.exists(), (out, options)


def test_gif_speed_and_explicit_stride_keep_browser_timing(
    recording_file: Path, tmp_path: Path
) -> None:
    gif = tmp_path / "s2.gif"
    result = runner.invoke(app, ["render", str(recording_file), "-o", str(gif), "--speed", "2"])
    assert result.exit_code == 0, result.output
    with Image.open(gif) as image:
        assert image.info["duration"] == 20
    args = ["render", str(recording_file), "-o", str(gif), "--speed", "2", "--stride", "1"]
    result = runner.invoke(app, args)
    assert result.exit_code == 1 and "at least 0.02 s" in result.output, result.output


def test_live_replay_without_a_window_fails(recording_file: Path, monkeypatch) -> None:
    monkeypatch.setenv("DISPLAY", ":7913")  # set, but no X server answers there
    result = runner.invoke(app, ["render", str(recording_file)])
    assert result.exit_code == 1, result.output
    assert "live window" in result.output and "xvfb-run" in result.output


def _write_half_then_fail(path, data: bytes) -> None:
    with open(path, "wb") as fh:
        fh.write(data[: len(data) // 2])
    raise OSError(28, "No space left on device")


@pytest.mark.parametrize(
    ("command", "name"), [("render", "keep.png"), ("render", "keep.html"), ("plot", "plot.png")]
)
def test_a_failed_write_leaves_the_existing_output_whole(
    recording_file: Path, tmp_path: Path, monkeypatch, command: str, name: str
) -> None:
    import matplotlib.figure
    import PIL.Image

    def half_then_fail(self, fp, *args, **kwargs):
        _write_half_then_fail(fp, b"x" * 64)

    target = tmp_path / name
    target.write_bytes(b"an earlier output")
    # a full disk part-way through each way these outputs are written
    monkeypatch.setattr(PIL.Image.Image, "save", half_then_fail)
    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", half_then_fail)
    monkeypatch.setattr(Path, "write_bytes", lambda self, data: _write_half_then_fail(self, data))
    monkeypatch.setattr(
        Path, "write_text", lambda self, text, *a, **k: _write_half_then_fail(self, text.encode())
    )
    result = runner.invoke(app, [command, str(recording_file), "-o", str(target)])
    assert result.exit_code == 1 and "No space left" in result.output, result.output
    assert target.read_bytes() == b"an earlier output"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["episode.npz", name])


def test_plot_never_overwrites_its_input(recording_file: Path, tmp_path: Path) -> None:
    as_png = tmp_path / "ep.png"
    as_png.write_bytes(recording_file.read_bytes())
    before = as_png.read_bytes()
    result = runner.invoke(app, ["plot", str(as_png)])  # default output: the input's name .png
    assert result.exit_code == 1 and "is the recording itself" in result.output, result.output
    result = runner.invoke(app, ["plot", str(recording_file), "-o", str(recording_file)])
    assert result.exit_code == 1 and "is the recording itself" in result.output, result.output
    link = tmp_path / "link.png"
    link.symlink_to(as_png)
    result = runner.invoke(app, ["render", str(as_png), "-o", str(link)])
    assert result.exit_code == 1 and "is the recording itself" in result.output, result.output
    assert as_png.read_bytes() == before


def test_a_folder_as_output_is_one_clean_error(recording_file: Path, tmp_path: Path) -> None:
    import subprocess
    import sys

    for name in ("out.mp4", "out.gif"):
        folder = tmp_path / name
        folder.mkdir()
        done = subprocess.run(
            [sys.executable, "-m", "l2run", "render", str(recording_file), "-o", str(folder)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 1, done.stderr
        lines = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("error:"), lines
        assert "folder" in lines[0]
        assert list(folder.iterdir()) == []
