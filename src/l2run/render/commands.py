"""`l2run render` and `l2run plot`: turn an episode recording into something to look at."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

OUTPUT_KINDS = ".mp4 (video), .gif, .html (browser replay), .png (one frame)"
VIDEO_ONLY = "mp4, gif and the live window only"


def _fail(message: str) -> typer.Exit:
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    return typer.Exit(code=1)


def _cannot_write(path: Path, exc: OSError) -> typer.Exit:
    # ffmpeg's errors append its whole command line and log: the first line says what failed
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return _fail(f"cannot write {path}: {first}")


def _load(recording: Path):
    from l2run.render.recording import load_recording

    try:
        return load_recording(recording)
    except (FileNotFoundError, ValueError) as exc:
        raise _fail(str(exc)) from exc


def _same_file(a: Path, b: Path) -> bool:
    """True when ``a`` and ``b`` name one file (same path resolved, or links to one file)."""
    if a.resolve() == b.resolve():
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist
        return False


def _check_output(output: Path, recording: Path) -> None:
    """Refuse an output that would overwrite the recording itself, or that is a folder."""
    if _same_file(output, recording):
        raise _fail(f"{output} is the recording itself; give another output file (-o)")
    if output.is_dir():
        raise _fail(f"cannot write {output}: it is a folder; give a file name (-o)")


def _camera(width: int, height: int, scale: float):
    """The camera for the render options; ``scale`` 0 fits the runner to the height."""
    from l2run.render.frame import PIXELS_PER_METRE_RANGE, Camera

    low, high = PIXELS_PER_METRE_RANGE
    if scale != 0 and not low <= scale <= high:  # not True for NaN either
        raise _fail(
            f"--scale must be 0 (fit the height) or {low:g} to {high:g} pixels per metre, "
            f"got {scale}"
        )
    try:
        return Camera(width=width, height=height, pixels_per_metre=scale or 150.0 * height / 360)
    except ValueError as exc:
        raise _fail(str(exc)) from exc


def _write_still(rec, output: Path, cam, frame: int) -> None:
    from PIL import Image

    from l2run.atomic_files import replacing
    from l2run.render.frame import recording_hud, render_frame

    if not -len(rec) <= frame < len(rec):
        raise ValueError(f"frame {frame} out of range (recording has {len(rec)} frames)")
    t = frame % len(rec)
    image = render_frame(rec.frame(t), rec.obstacles, cam, recording_hud(rec, t))
    with replacing(output) as tmp:
        Image.fromarray(image).save(tmp, format="PNG")


def render(
    recording: Annotated[Path, typer.Argument(help="Episode recording (.npz).")],
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            help=f"Write {OUTPUT_KINDS}; an existing file is replaced only once the new one is "
            "complete. Without it: replay in a live window.",
        ),
    ] = None,
    width: Annotated[int, typer.Option(help="Image width, pixels (not for .html).")] = 640,
    height: Annotated[int, typer.Option(help="Image height, pixels (not for .html).")] = 360,
    scale: Annotated[
        float,
        typer.Option(
            help="Pixels per metre, 5 to 10000 (0: fits the height; not for .html).",
        ),
    ] = 0,
    speed: Annotated[
        float, typer.Option(help=f"Playback speed, × real time, 0.01 to 100 ({VIDEO_ONLY}).")
    ] = 1.0,
    stride: Annotated[
        int,
        typer.Option(
            help="Keep every n-th frame; mp4 and gif only (0: mp4 every frame, fewer beyond 240 "
            "fps; gif the fewest giving 0.02 s a frame at --speed, 2 at 1×)."
        ),
    ] = 0,
    frame: Annotated[
        int,
        typer.Option(
            help="Frame index (from 0) for a .png still (-1: last); .png only (the .html page "
            "numbers frames the same way)."
        ),
    ] = -1,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
) -> None:
    """Render an episode recording as video, a browser replay, a still, or live."""
    from l2run.render.live import check_speed

    try:
        speed = check_speed(speed)
    except ValueError as exc:
        raise _fail(f"--{exc}") from exc
    if output is not None:
        _check_output(output, recording)
    rec = _load(recording)
    cam = _camera(width, height, scale)
    if output is None:
        from l2run.render.live import DisplayUnavailable, display_available, play_recording

        if not display_available():
            raise _fail("no display for a live window; give -o run.mp4 (or run under xvfb-run)")
        try:
            play_recording(rec, speed=speed, camera=cam)
        except DisplayUnavailable as exc:
            raise _fail(
                f"no live window ({exc}); give -o run.mp4 (or run under xvfb-run -a)"
            ) from exc
        except ValueError as exc:
            raise _fail(str(exc)) from exc
        return
    suffix = output.suffix.lower()
    try:
        if suffix in (".mp4", ".gif"):
            from l2run.render.video import write_video

            write_video(
                rec, output, camera=cam, stride=stride or None, speed=speed, progress=progress
            )
        elif suffix in (".html", ".htm"):
            from l2run.render.replay_html import write_html_replay

            write_html_replay(rec, output)
        elif suffix == ".png":
            _write_still(rec, output, cam, frame)
        else:
            raise ValueError(f"unknown output type {output.name!r}; use {OUTPUT_KINDS}")
    except ValueError as exc:
        raise _fail(str(exc)) from exc
    except OSError as exc:  # a folder that cannot be made or written, a full disk
        raise _cannot_write(output, exc) from exc
    typer.echo(f"wrote {output}")


def plot(
    recording: Annotated[Path, typer.Argument(help="Episode recording (.npz).")],
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            help="PNG file (default: the input's name with .png; never the input itself).",
        ),
    ] = None,
) -> None:
    """Plot joint angles, muscle activations, ground reaction forces and pelvis x (PNG)."""
    from l2run.render.plots import plot_recording

    out = output or recording.with_suffix(".png")
    _check_output(out, recording)
    rec = _load(recording)
    try:
        plot_recording(rec, out)
    except ValueError as exc:
        raise _fail(str(exc)) from exc
    except OSError as exc:
        raise _cannot_write(out, exc) from exc
    typer.echo(f"wrote {out}")
