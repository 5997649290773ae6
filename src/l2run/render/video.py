"""Recordings to video: mp4 (H.264 through imageio-ffmpeg) or animated GIF.

An mp4 holds one video frame per recorded frame at the recording's own rate times ``speed``
(100 fps for 0.01 s steps at 1×), so it plays in real time; when that would pass
``MAX_MP4_FPS`` (a fast ``speed``) it keeps every ``stride``-th frame instead. GIF players count
frame delays in 1/100 s and play delays below 2/100 s slowly (browsers: ~10/100 s), so a GIF keeps
every ``stride``-th frame, by default the fewest that give each frame ``MIN_GIF_DELAY`` or more:
``ceil(MIN_GIF_DELAY * speed / dt)``; an explicit stride that gives less is refused. Each GIF
delay is rounded to whole 1/100 s. ``speed`` must lie in ``live.SPEED_RANGE``.

The file is written beside its target and renamed over it once complete: an interrupted or failed
render leaves any earlier video whole.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from tqdm import tqdm

from l2run.atomic_files import not_a_folder, replacing
from l2run.render.frame import Camera, render_recording
from l2run.render.live import check_speed
from l2run.render.recording import Recording

VIDEO_SUFFIXES = (".mp4", ".gif")
MIN_GIF_DELAY = 0.02  # s, the shortest frame delay browsers honour in a GIF
H264_BLOCK = 2  # yuv420p needs even width and height
MAX_GIF_DELAY_MS = 65_535  # a GIF stores each frame's delay in 16 bits (here: ms)
MP4_FPS_RANGE = (0.1, 240.0)  # frames per second an mp4 may play at (players read 1000 as 0)
MAX_MP4_FPS = MP4_FPS_RANGE[1]
_SLACK = 1e-9  # relative: float rounding in dt * stride / speed


def default_stride(recording: Recording, suffix: str, speed: float = 1.0) -> int:
    """Frames kept per frame written: for .gif the fewest giving ``MIN_GIF_DELAY`` a frame at
    ``speed``; for .mp4 1, or the fewest that keep the frame rate at most ``MAX_MP4_FPS``."""
    if suffix == ".gif":
        return max(1, math.ceil(MIN_GIF_DELAY * speed / recording.dt * (1 - _SLACK)))
    return max(1, math.ceil(speed / (recording.dt * MAX_MP4_FPS) * (1 - _SLACK)))


def check_video_target(path: str | Path) -> Path:
    """``path`` as a Path when it can name a video: .mp4 or .gif, and not an existing folder."""
    out = Path(path)
    if out.suffix.lower() not in VIDEO_SUFFIXES:
        raise ValueError(f"video must end in one of {VIDEO_SUFFIXES}, got {out.name!r}")
    not_a_folder(out)
    return out


def _frame_rate(recording: Recording, suffix: str, stride: int, speed: float) -> float:
    """Frames per second the video plays at; ValueError when its format cannot store that."""
    fps = speed / (recording.dt * stride)
    asked = f"stride {stride} at speed {speed:g} asks for {1 / fps:g} s a frame"
    if suffix == ".gif":
        if 1 / fps < MIN_GIF_DELAY * (1 - _SLACK):
            raise ValueError(
                f"a GIF frame must last at least {MIN_GIF_DELAY:g} s (browsers slow shorter "
                f"ones down); {asked} (a larger stride, a lower speed, or --stride 0)"
            )
        if 1000.0 / fps > MAX_GIF_DELAY_MS:
            raise ValueError(
                f"a GIF frame may last at most {MAX_GIF_DELAY_MS / 1000:g} s; {asked} "
                "(a smaller stride or a higher speed)"
            )
    else:
        low, high = MP4_FPS_RANGE
        if not low * (1 - _SLACK) <= fps <= high * (1 + _SLACK):
            raise ValueError(
                f"an mp4 plays {low:g} to {high:g} frames a second; {asked} ({fps:g} fps)"
            )
    return fps


def write_video(
    recording: Recording,
    path: str | Path,
    camera: Camera | None = None,
    stride: int | None = None,
    speed: float = 1.0,
    progress: bool = True,
) -> Path:
    """Render ``recording`` to ``path`` (.mp4 or .gif); returns the path.

    ``speed`` scales playback (2.0 plays twice as fast); ``stride`` keeps every n-th frame
    (None: ``default_stride``). ValueError for a request the format cannot play, OSError when
    the file cannot be written; either way an existing file at ``path`` is left as it was.
    """
    out = check_video_target(path)
    suffix = out.suffix.lower()
    speed = check_speed(speed)
    cam = camera or Camera()
    if suffix == ".mp4" and (cam.width % H264_BLOCK or cam.height % H264_BLOCK):
        raise ValueError(f"mp4 needs an even width and height, got {cam.width}×{cam.height}")
    stride = default_stride(recording, suffix, speed) if stride is None else stride
    if stride < 1:
        raise ValueError(f"stride must be >= 1, got {stride}")
    fps = _frame_rate(recording, suffix, stride, speed)
    n_frames = len(range(0, len(recording), stride))

    frames = tqdm(
        render_recording(recording, cam, stride),
        total=n_frames,
        desc=f"render {out.name}",
        unit="frame",
        disable=not progress,
    )
    with replacing(out) as tmp:
        if suffix == ".mp4":
            _write_mp4(tmp, frames, fps)
        else:
            _write_gif(tmp, frames, fps)
    return out


def _write_mp4(path: Path, frames: Iterable[np.ndarray], fps: float) -> None:
    """H.264 through imageio-ffmpeg, frame by frame."""
    import imageio.v2 as imageio

    with warnings.catch_warnings():
        # ffmpeg is started by a fork that execs at once; JAX, loaded by the engine, warns about
        # any fork of its threaded process, which for this one is a false alarm.
        warnings.filterwarnings(
            "ignore", message=r"os\.fork\(\) was called", category=RuntimeWarning
        )
        writer = imageio.get_writer(
            path,
            format="FFMPEG",
            fps=fps,
            codec="libx264",
            pixelformat="yuv420p",
            macro_block_size=H264_BLOCK,
            quality=7,
            ffmpeg_log_level="error",
        )
        try:
            for image in frames:
                writer.append_data(image)
        finally:
            writer.close()


def _write_gif(path: Path, frames: Iterable[np.ndarray], fps: float) -> None:
    """An animated GIF by Pillow, which holds every frame until it writes the file: handed the
    frames one by one (not as a list of RGB images, as imageio's writer keeps them), it keeps
    each as its 1-byte-per-pixel palette image, a third of the memory, for the same file."""
    from PIL import Image

    # whole 1/100 s: Pillow truncates, which would make 19.999 ms a 10 ms frame
    delay_ms = 10.0 * max(2, round(100.0 / fps))
    images = (Image.fromarray(frame) for frame in frames)
    first = next(images)
    first.save(path, format="GIF", save_all=True, append_images=images, duration=delay_ms, loop=0)
