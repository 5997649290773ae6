from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from l2run.render.frame import Camera
from l2run.render.video import write_video


def test_mp4_one_frame_per_step_right_size(recording, tmp_path: Path) -> None:
    import imageio.v2 as imageio

    cam = Camera(width=320, height=200, pixels_per_metre=90.0)
    out = write_video(recording, tmp_path / "run.mp4", camera=cam, progress=False)
    reader = imageio.get_reader(out, format="FFMPEG")
    try:
        frames = [np.asarray(f) for f in reader]
        fps = reader.get_meta_data()["fps"]
    finally:
        reader.close()
    assert len(frames) == len(recording)
    assert all(f.shape == (200, 320, 3) for f in frames)
    assert fps == pytest.approx(1.0 / recording.dt)
    # the runner moves: first and last decoded frames differ clearly
    assert np.abs(frames[0].astype(int) - frames[-1].astype(int)).mean() > 0.5


def test_gif_stride_and_delay(recording, tmp_path: Path) -> None:
    out = write_video(recording, tmp_path / "run.gif", progress=False)
    with Image.open(out) as gif:
        n, delay = gif.n_frames, gif.info["duration"]
    assert n == len(range(0, len(recording), 2))  # 0.01 s steps → every 2nd frame for 20 ms
    assert delay == pytest.approx(20, abs=1)


def test_bad_video_requests(recording, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="mp4"):
        write_video(recording, tmp_path / "run.avi", progress=False)
    with pytest.raises(ValueError, match="even"):
        write_video(recording, tmp_path / "run.mp4", camera=Camera(width=321), progress=False)
