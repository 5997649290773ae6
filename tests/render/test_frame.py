from __future__ import annotations

import numpy as np
import pytest

from l2run.render.frame import (
    MARK,
    PELVIS_MARKER,
    Camera,
    Hud,
    render_engine,
    render_frame,
    render_recording,
)
from l2run.render.recording import Frame, capture_frame

from .fake_engine import FakeEngine


def _is(pixel: np.ndarray, colour: tuple[int, int, int], tol: int = 10) -> bool:
    return bool(np.all(np.abs(pixel.astype(int) - colour) <= tol))


@pytest.mark.parametrize("pelvis", [(0.0, 0.94, 0.0), (3.7, 0.80, 0.3), (-1.2, 1.10, -0.2)])
def test_pelvis_marker_at_pose_pixel(fake_engine: FakeEngine, pelvis) -> None:
    frame = capture_frame(fake_engine)
    poses = dict(frame.body_poses)
    dx, dy = pelvis[0] - poses["pelvis"][0], pelvis[1] - poses["pelvis"][1]
    poses = {k: (v[0] + dx, v[1] + dy, v[2]) for k, v in poses.items()}
    poses["pelvis"] = pelvis
    frame = Frame(**{**frame.__dict__, "body_poses": poses, "contact_spheres": None})
    cam = Camera(width=480, height=320, pixels_per_metre=120.0, ground_fraction=0.8)
    img = render_frame(frame, camera=cam)
    assert img.shape == (320, 480, 3) and img.dtype == np.uint8
    # camera follows the pelvis: centre column; row from the ground line (0.8 × 320) up y·scale
    col = round(480 / 2)
    row = round(0.8 * 320 - pelvis[1] * 120.0)
    assert _is(img[row, col], PELVIS_MARKER), img[row, col]
    # and it is not that colour a marker-width away (the marker is where the pose says)
    assert not _is(img[row, col + 15], PELVIS_MARKER)
    # with a fixed camera the marker moves by the pose's x
    img2 = render_frame(frame, camera=cam, centre_x=pelvis[0] - 0.5)
    assert _is(img2[row, col + 60], PELVIS_MARKER)


def _two_muscle_frame(a0: float, a1: float) -> Frame:
    # two horizontal muscles high above the figure, nothing else near them
    paths = [np.zeros((0, 2))] * 18
    paths = list(paths)
    paths[0] = np.array([[-1.0, 2.0], [-0.5, 2.0], [0.0, 2.0]])  # right-leg slot
    paths[10] = np.array([[0.2, 1.8], [0.9, 1.8]])  # left-leg slot
    acts = np.full(18, 0.5)
    acts[0], acts[10] = a0, a1
    return Frame(
        time=0.0,
        body_poses={"pelvis": (0.0, 0.9, 0.0)},
        muscle_paths=paths,
        activations=acts,
        contact_forces={},
    )


def _muscle_pixel(img: np.ndarray, cam: Camera, xy) -> np.ndarray:
    col, row = cam.to_pixels(xy, 0.0)
    return img[round(row), round(col)].astype(int)


def test_active_muscle_red_inactive_blue() -> None:
    cam = Camera()
    img = render_frame(_two_muscle_frame(1.0, 0.0), camera=cam)
    active = _muscle_pixel(img, cam, (-0.7, 2.0))
    inactive = _muscle_pixel(img, cam, (0.5, 1.8))
    assert active[0] > 200 and active[2] < 60 and active[1] < 60, active
    assert inactive[2] > 200 and inactive[0] < 60 and inactive[1] < 60, inactive
    # swapping activations swaps colours
    img = render_frame(_two_muscle_frame(0.0, 1.0), camera=cam)
    assert _muscle_pixel(img, cam, (-0.7, 2.0))[2] > 200
    assert _muscle_pixel(img, cam, (0.5, 1.8))[0] > 200
    half = _muscle_pixel(render_frame(_two_muscle_frame(0.5, 0.5), camera=cam), cam, (-0.7, 2.0))
    assert 100 < half[0] < 160 and 100 < half[2] < 160


def test_obstacle_and_hud_drawn(fake_engine: FakeEngine) -> None:
    cam = Camera()
    frame = capture_frame(fake_engine)
    bare = render_frame(frame, camera=cam)
    with_obstacle = render_frame(frame, [[0.9, 0.1, 0.1]], camera=cam)
    col, row = cam.to_pixels((0.9, 0.1), frame.body_poses["pelvis"][0])
    assert not np.array_equal(bare[round(row), round(col)], with_obstacle[round(row), round(col)])
    with_hud = render_frame(frame, camera=cam, hud=Hud(1.0, 2.0, 3.0))
    assert (with_hud[:25] != bare[:25]).any()


def test_render_engine_and_recording(fake_engine: FakeEngine, recording) -> None:
    img = render_engine(fake_engine)
    assert img.shape == (360, 640, 3)
    frames = list(render_recording(recording, stride=10))
    assert len(frames) == len(range(0, len(recording), 10))
    assert not np.array_equal(frames[0], frames[-1])
    with pytest.raises(ValueError):
        list(render_recording(recording, stride=0))
    with pytest.raises(ValueError):
        Camera(width=4)


@pytest.mark.parametrize("ppm", [float("nan"), float("inf"), 1e300, 1e-6, 0.0, -5.0, 4.9, 10_001])
def test_camera_refuses_scales_outside_its_range(ppm: float) -> None:
    with pytest.raises(ValueError, match="pixels per metre must be between 5 and 10000"):
        Camera(pixels_per_metre=ppm)


def _tick_runs(ppm: float, width: int = 640) -> list[int]:
    """Lengths of the runs of mark-coloured pixels just under the ground line (the ticks)."""
    empty = Frame(
        time=0.0, body_poses={}, muscle_paths=[], activations=np.zeros(0), contact_forces={}
    )
    cam = Camera(width=width, pixels_per_metre=ppm)
    img = render_frame(empty, camera=cam, centre_x=0.0)
    row = img[int(cam.ground_row) + 3].astype(int)  # ticks only: labels start lower
    marked = np.all(np.abs(row - MARK) <= 30, axis=-1).astype(int)
    edges = np.flatnonzero(np.diff(np.concatenate([[0], marked, [0]])))
    return list(edges[1::2] - edges[::2])


@pytest.mark.parametrize("ppm", [5.0, 6.0, 7.9])
def test_ground_marks_closer_than_two_pixels_are_left_out(ppm: float) -> None:
    runs = _tick_runs(ppm)
    # every metre a 2-pixel-wide mark, and the 0.25 m ticks (under 2 px apart) left out
    assert max(runs) <= 2, runs
    assert len(runs) >= int(640 / ppm) - 1


def test_ground_marks_at_the_default_scale() -> None:
    runs = _tick_runs(150.0)
    assert len(runs) == pytest.approx(640 / (0.25 * 150), abs=1)  # every 0.25 m


def test_consecutive_frames_show_the_motion(fake_engine: FakeEngine) -> None:
    """Frames of a moving runner render to the same size and differ (timings belong in
    benchmarks, not tests)."""
    images = []
    for _ in range(5):
        fake_engine.step(np.zeros(18))
        images.append(render_frame(capture_frame(fake_engine), [[1.0, 0.0, 0.1]], hud=Hud(0, 0, 0)))
    assert len({image.shape for image in images}) == 1
    assert all(not np.array_equal(a, b) for a, b in zip(images, images[1:], strict=False))
