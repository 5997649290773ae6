"""`l2run render` and `l2run plot`: turn an episode recording into something to look at."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

OUTPUT_KINDS = ".mp4 (video), .gif, .html (browser replay), .png (one frame)"


def _fail(message: str) -> typer.Exit:
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    return typer.Exit(code=1)


def _load(recording: Path):
    from l2run.render.recording import load_recording

    try:
        return load_recording(recording)
    except (FileNotFoundError, ValueError) as exc:
        raise _fail(str(exc)) from exc


def render(
    recording: Annotated[Path, typer.Argument(help="Episode recording (.npz).")],
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", "-o", help=f"Write {OUTPUT_KINDS}. Without it: replay in a live window."
        ),
    ] = None,
    width: Annotated[int, typer.Option(help="Image width, pixels.")] = 640,
    height: Annotated[int, typer.Option(help="Image height, pixels.")] = 360,
    scale: Annotated[float, typer.Option(help="Pixels per metre (default: fits the height).")] = 0,
    speed: Annotated[float, typer.Option(help="Playback speed, × real time.")] = 1.0,
    stride: Annotated[
        int, typer.Option(help="Keep every n-th frame (0: 1 for mp4, 2 for gif).")
    ] = 0,
    frame: Annotated[int, typer.Option(help="Frame index for a .png still (-1: last).")] = -1,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
) -> None:
    """Render an episode recording as video, a browser replay, a still, or live."""
    from l2run.render.frame import Camera

    rec = _load(recording)
    try:
        cam = Camera(
            width=width,
            height=height,
            pixels_per_metre=scale or 150.0 * height / 360,
        )
    except ValueError as exc:
        raise _fail(str(exc)) from exc
    if output is None:
        from l2run.render.live import display_available, play_recording

        if not display_available():
            raise _fail("no display for a live window; give -o run.mp4 (or run under xvfb-run)")
        try:
            play_recording(rec, speed=speed, camera=cam)
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
            from PIL import Image

            from l2run.render.frame import recording_hud, render_frame

            t = frame % len(rec) if -len(rec) <= frame < len(rec) else None
            if t is None:
                raise ValueError(f"frame {frame} out of range (recording has {len(rec)} frames)")
            image = render_frame(rec.frame(t), rec.obstacles, cam, recording_hud(rec, t))
            output.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(image).save(output)
        else:
            raise ValueError(f"unknown output type {output.name!r}; use {OUTPUT_KINDS}")
    except ValueError as exc:
        raise _fail(str(exc)) from exc
    except OSError as exc:  # a folder that cannot be made or written, a full disk
        raise _fail(f"cannot write {output}: {exc}") from exc
    typer.echo(f"wrote {output}")


def plot(
    recording: Annotated[Path, typer.Argument(help="Episode recording (.npz).")],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="PNG file (default: next to the input).")
    ] = None,
) -> None:
    """Plot joint angles, muscle activations, ground reaction forces and pelvis x (PNG)."""
    from l2run.render.plots import plot_recording

    rec = _load(recording)
    out = output or recording.with_suffix(".png")
    try:
        plot_recording(rec, out)
    except ValueError as exc:
        raise _fail(str(exc)) from exc
    except OSError as exc:
        raise _fail(f"cannot write {out}: {exc}") from exc
    typer.echo(f"wrote {out}")
