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


def _gif_frames_and_delay(path: Path) -> tuple[int, int]:
    with Image.open(path) as gif:
        return gif.n_frames, gif.info["duration"]


@pytest.mark.parametrize("speed", [2.0, 3.0, 4.0])
def test_gif_keeps_0_02_s_frames_at_any_speed(recording, tmp_path: Path, speed: float) -> None:
    # browsers play GIF delays under 0.02 s at ~0.1 s: a faster GIF must drop frames instead
    out = write_video(recording, tmp_path / "fast.gif", speed=speed, progress=False)
    stride = round(0.02 * speed / recording.dt)
    n, delay = _gif_frames_and_delay(out)
    assert delay == 20
    assert n == len(range(0, len(recording), stride))


def test_gif_stride_too_fast_for_browsers_is_refused(recording, tmp_path: Path) -> None:
    out = tmp_path / "fast.gif"
    with pytest.raises(ValueError, match="at least 0.02 s"):
        write_video(recording, out, stride=1, progress=False)
    with pytest.raises(ValueError, match="at least 0.02 s"):
        write_video(recording, out, stride=3, speed=2.0, progress=False)
    assert not out.exists()
    write_video(recording, out, stride=4, speed=2.0, progress=False)  # exactly 0.02 s: fine
    assert _gif_frames_and_delay(out)[1] == 20


@pytest.mark.parametrize("suffix", [".mp4", ".gif"])
@pytest.mark.parametrize("speed", [float("nan"), float("inf"), 1e-9, 0.0, -1.0, 1e4])
def test_speeds_outside_the_range_are_refused(recording, tmp_path, suffix, speed) -> None:
    out = tmp_path / f"x{suffix}"
    with pytest.raises(ValueError, match="speed must be between 0.01 and 100"):
        write_video(recording, out, speed=speed, progress=False)
    assert list(tmp_path.iterdir()) == [tmp_path / "episode.npz"]


def test_mp4_frame_rate_stays_playable(recording, tmp_path: Path) -> None:
    import imageio.v2 as imageio

    out = write_video(recording, tmp_path / "fast.mp4", speed=4.0, progress=False)
    reader = imageio.get_reader(out, format="FFMPEG")
    try:
        n, fps = reader.count_frames(), reader.get_meta_data()["fps"]
    finally:
        reader.close()
    assert fps == pytest.approx(200.0)  # 400 fps would be past 240: every 2nd frame at 200
    assert n == len(range(0, len(recording), 2))
    with pytest.raises(ValueError, match="an mp4 plays 0.1 to 240 frames a second"):
        write_video(recording, tmp_path / "slow.mp4", stride=20, speed=0.01, progress=False)
    with pytest.raises(ValueError, match="an mp4 plays 0.1 to 240 frames a second"):
        write_video(recording, tmp_path / "fast.mp4", stride=1, speed=4.0, progress=False)


@pytest.mark.parametrize("suffix", [".mp4", ".gif"])
@pytest.mark.parametrize("failure", [KeyboardInterrupt, RuntimeError])
def test_interrupted_or_failed_render_keeps_the_old_video(
    recording, tmp_path: Path, monkeypatch, suffix, failure
) -> None:
    import l2run.render.video as video

    out = tmp_path / f"keep{suffix}"
    write_video(recording, out, progress=False)
    before = out.read_bytes()
    frames = video.render_recording

    def fail_midway(*args, **kwargs):
        for i, image in enumerate(frames(*args, **kwargs)):
            if i == 5:
                raise failure("stopped")
            yield image

    monkeypatch.setattr(video, "render_recording", fail_midway)
    with pytest.raises(failure):
        write_video(recording, out, progress=False)
    assert out.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["episode.npz", out.name]


@pytest.mark.parametrize("suffix", [".mp4", ".gif"])
def test_a_folder_as_target_is_refused_before_rendering(recording, tmp_path, suffix) -> None:
    folder = tmp_path / f"out{suffix}"
    folder.mkdir()
    with pytest.raises(IsADirectoryError, match="is a folder"):
        write_video(recording, folder, progress=False)
    assert list(folder.iterdir()) == []


def test_gif_frames_streamed_to_pillow_make_the_file_imageio_makes(recording, tmp_path) -> None:
    """The GIF writer hands Pillow its frames one by one (Pillow then keeps 1-byte palette
    frames, not imageio's list of RGB ones); the file is the same byte for byte."""
    import imageio.v2 as imageio

    from l2run.render.frame import render_recording

    camera = Camera(width=160, height=96)
    ours = write_video(recording, tmp_path / "ours.gif", camera=camera, progress=False)
    with Image.open(ours) as gif:
        delay = gif.info["duration"]
    theirs = tmp_path / "theirs.gif"
    writer = imageio.get_writer(theirs, format="GIF", mode="I", duration=delay, loop=0)
    for image in render_recording(recording, camera, 2):
        writer.append_data(image)
    writer.close()
    assert ours.read_bytes() == theirs.read_bytes()


def test_an_mp4_written_beside_jax_raises_no_fork_warning(recording, tmp_path) -> None:
    """ffmpeg's fork execs at once: JAX's warning about forking its threads is a false alarm
    that `l2run demo` printed."""
    import warnings

    import jax.numpy as jnp

    jnp.ones(2).block_until_ready()  # JAX's threads are up
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        write_video(recording, tmp_path / "run.mp4", camera=Camera(width=64, height=48))
    assert not [w for w in caught if "fork" in str(w.message)], [str(w.message) for w in caught]
