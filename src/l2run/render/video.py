"""Recordings to video: mp4 (H.264 through imageio-ffmpeg) or animated GIF.

An mp4 holds one video frame per recorded frame at the recording's own rate (100 fps for 0.01 s
steps), so it plays in real time. GIF players round frame delays to 1/100 s and treat delays below
2/100 s as slow, so GIFs keep every ``stride``-th frame (default: enough to reach ≥ 0.02 s a frame).
"""

from __future__ import annotations

import math
from pathlib import Path

from tqdm import tqdm

from l2run.render.frame import Camera, render_recording
from l2run.render.recording import Recording

VIDEO_SUFFIXES = (".mp4", ".gif")
MIN_GIF_DELAY = 0.02  # s, the shortest frame delay browsers honour in a GIF
H264_BLOCK = 2  # yuv420p needs even width and height
MAX_GIF_DELAY_MS = 65_535  # a GIF stores each frame's delay in 16 bits (here: ms)


def default_stride(recording: Recording, suffix: str) -> int:
    if suffix == ".gif":
        return max(1, math.ceil(MIN_GIF_DELAY / recording.dt - 1e-9))
    return 1


def write_video(
    recording: Recording,
    path: str | Path,
    camera: Camera | None = None,
    stride: int | None = None,
    speed: float = 1.0,
    progress: bool = True,
) -> Path:
    """Render ``recording`` to ``path`` (.mp4 or .gif); returns the path.

    ``speed`` scales playback (2.0 plays twice as fast); ``stride`` keeps every n-th frame.
    """
    out = Path(path)
    suffix = out.suffix.lower()
    if suffix not in VIDEO_SUFFIXES:
        raise ValueError(f"video must end in one of {VIDEO_SUFFIXES}, got {out.name!r}")
    if speed <= 0:
        raise ValueError(f"speed must be positive, got {speed}")
    cam = camera or Camera()
    if suffix == ".mp4" and (cam.width % H264_BLOCK or cam.height % H264_BLOCK):
        raise ValueError(f"mp4 needs an even width and height, got {cam.width}×{cam.height}")
    stride = stride or default_stride(recording, suffix)
    if stride < 1:
        raise ValueError(f"stride must be >= 1, got {stride}")
    fps = speed / (recording.dt * stride)
    if suffix == ".gif" and 1000.0 / fps > MAX_GIF_DELAY_MS:
        raise ValueError(
            f"a GIF frame may last at most {MAX_GIF_DELAY_MS / 1000:g} s; stride {stride} at "
            f"speed {speed:g} asks for {1 / fps:g} s (a smaller stride or a higher speed)"
        )
    n_frames = len(range(0, len(recording), stride))
    out.parent.mkdir(parents=True, exist_ok=True)

    import imageio.v2 as imageio

    if suffix == ".mp4":
        writer = imageio.get_writer(
            out,
            format="FFMPEG",
            fps=fps,
            codec="libx264",
            pixelformat="yuv420p",
            macro_block_size=H264_BLOCK,
            quality=7,
            ffmpeg_log_level="error",
        )
    else:
        writer = imageio.get_writer(out, format="GIF", mode="I", duration=1000.0 / fps, loop=0)
    frames = render_recording(recording, cam, stride)
    try:
        for image in tqdm(
            frames, total=n_frames, desc=f"render {out.name}", unit="frame", disable=not progress
        ):
            writer.append_data(image)
    finally:
        writer.close()
    return out
