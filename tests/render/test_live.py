from __future__ import annotations

import warnings

import numpy as np
import pytest

import l2run.render.live as live
from l2run.render.env_view import EnvView
from l2run.render.frame import PELVIS_MARKER, Camera

from .fake_engine import FakeEngine


def _count(img: np.ndarray, colour, tol: int = 12) -> int:
    return int(np.all(np.abs(img.astype(int) - colour) <= tol, axis=-1).sum())


def test_live_window_shows_figure_under_xvfb(xvfb_display, monkeypatch) -> None:
    from PIL import ImageGrab

    monkeypatch.setenv("DISPLAY", xvfb_display)
    engine = FakeEngine()
    view = EnvView("human", camera=Camera(width=480, height=320))
    try:
        view.reset(engine, [[1.0, 0.0, 0.1]])
        for _ in range(5):
            engine.step(np.zeros(18))
            view.step(0.01)
        assert view.render() is None  # human mode draws in step()
        assert view._viewer.is_open
        view._viewer._root.update()
        shot = np.asarray(ImageGrab.grab(xdisplay=xvfb_display).convert("RGB"))
    finally:
        view.close()
    assert _count(shot, PELVIS_MARKER) > 10, "pelvis marker not on screen"
    # muscles: strongly red or strongly blue pixels exist; bones: near-black pixels exist
    reddish = (shot[..., 0] > 150) & (shot[..., 1] < 60)
    bluish = (shot[..., 2] > 150) & (shot[..., 1] < 60)
    assert (reddish | bluish).sum() > 50, "no muscle pixels on screen"
    assert _count(shot, (35, 35, 40)) > 100, "no bone pixels on screen"


def test_headless_warns_once_and_runs(monkeypatch) -> None:
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.setattr(live, "_warned_headless", False)
    engine = FakeEngine()
    with pytest.warns(RuntimeWarning, match="headless"):
        view = EnvView("human")
        view.reset(engine)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a second warning would raise
        engine.step(np.zeros(18))
        view.step(0.0)
        EnvView("human").reset(engine)
    assert view.render() is None
    view.close()


def test_rgb_array_mode_and_bad_mode() -> None:
    engine = FakeEngine()
    view = EnvView("rgb_array")
    with pytest.raises(ValueError):
        view.render()
    view.reset(engine)
    img = view.render()
    assert img.shape == (360, 640, 3) and img.dtype == np.uint8
    with pytest.raises(ValueError, match="render_mode"):
        EnvView("window")


def test_realtime_pacing(monkeypatch) -> None:
    viewer = live.LiveViewer(speed=2.0)
    sleeps: list[float] = []
    monkeypatch.setattr(live.time, "sleep", sleeps.append)
    viewer._pace(0.0)
    viewer._pace(1.0)  # 1 s simulated at 2× speed: ~0.5 s due
    assert sleeps and 0.4 < sleeps[0] <= 0.5


def test_replay_recording_in_window_under_xvfb(xvfb_display, recording, monkeypatch) -> None:
    from PIL import ImageGrab

    monkeypatch.setenv("DISPLAY", xvfb_display)
    shots: list[np.ndarray] = []
    original_show = live.LiveViewer.show

    def show_and_grab(self, image, sim_time=None):
        shown = original_show(self, image, sim_time)
        if len(shots) < 2 and sim_time in (recording.time[0], recording.time[-1]):
            shots.append(np.asarray(ImageGrab.grab(xdisplay=xvfb_display).convert("RGB")))
        return shown

    monkeypatch.setattr(live.LiveViewer, "show", show_and_grab)
    live.play_recording(recording, speed=50.0)
    assert len(shots) == 2
    assert all(_count(s, PELVIS_MARKER) > 10 for s in shots)
    assert not np.array_equal(shots[0], shots[1])  # the picture changed over the episode


def test_wants_frame_throttles_drawing() -> None:
    viewer = live.LiveViewer(max_fps=10.0)
    assert viewer.wants_frame()  # nothing shown yet
    viewer._last_shown = live.time.perf_counter()
    assert not viewer.wants_frame()  # within 0.1 s of the last frame
    viewer._last_shown -= 0.2
    assert viewer.wants_frame()
    viewer.restart_clock()
    assert viewer.wants_frame()
    viewer.close()
    assert not viewer.wants_frame()
    with pytest.raises(ValueError):
        live.LiveViewer(max_fps=0)


UNOPENABLE_DISPLAY = ":7913"  # no X server answers there: Tk cannot open a window


def test_replay_without_a_window_is_an_error_not_a_silent_return(recording, monkeypatch) -> None:
    for display in (None, UNOPENABLE_DISPLAY):
        if display is None:
            monkeypatch.delenv("DISPLAY", raising=False)
        else:
            monkeypatch.setenv("DISPLAY", display)
        monkeypatch.setattr(live, "_warned_headless", False)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no "running headless" warning either
            with pytest.raises(live.DisplayUnavailable):
                live.play_recording(recording)


@pytest.mark.parametrize("speed", [float("nan"), float("inf"), 0.0, -1.0, 1e-9, 1e4])
def test_replay_refuses_speeds_outside_the_range(recording, monkeypatch, speed) -> None:
    monkeypatch.delenv("DISPLAY", raising=False)
    with pytest.raises(ValueError, match="speed must be between 0.01 and 100"):
        live.play_recording(recording, speed=speed)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), 0.0])
def test_viewer_refuses_non_finite_speed_and_rate(bad: float) -> None:
    with pytest.raises(ValueError, match="speed"):
        live.LiveViewer(speed=bad)
    with pytest.raises(ValueError, match="max_fps"):
        live.LiveViewer(max_fps=bad)


def test_headless_warning_points_at_the_callers_line(monkeypatch) -> None:
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.setattr(live, "_warned_headless", False)
    with pytest.warns(RuntimeWarning, match="headless") as record:
        EnvView("human").reset(FakeEngine())
    assert record[0].filename == __file__


def test_headless_warning_from_a_command_points_past_the_command_line_machinery(
    monkeypatch,
) -> None:
    """`l2run run --visualize` without a display: the warning named typer's frame."""
    from typer.testing import CliRunner

    from l2run.cli import app

    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.setattr(live, "_warned_headless", False)
    with pytest.warns(RuntimeWarning, match="headless") as record:
        args = ["run", "--visualize", "--steps", "1", "--difficulty", "0", "--policy", "zero"]
        result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert record[0].filename == __file__, record[0].filename
