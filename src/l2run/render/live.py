"""A live window (Tk) that shows the runner as it runs: ``RunEnv(visualize=True)``.

Tk comes with Python and works under Xvfb, so headless servers can watch through a virtual
display (``xvfb-run l2run run --visualize`` or ``Xvfb :99 & DISPLAY=:99 ...``). Without any
display the viewer warns once per process and turns into a no-op: the run goes on headless. A
replay (``play_recording``) shows nothing else, so there a missing display is an error instead
(``DisplayUnavailable``).

Pacing: when the simulation runs faster than real time (the JAX engine) the viewer waits so that
one simulated second lasts ``1 / speed`` wall seconds. It never slows a run that is already slower
than that, and callers skip drawing while ``wants_frame()`` is False (at most ``max_fps`` frames
per wall second), so a slow engine is not slowed further by drawing every step.
"""

from __future__ import annotations

import math
import os
import sys
import time
import warnings
from typing import Any

import numpy as np

from l2run.render.recording import Recording

_warned_headless = False
MAX_DISPLAY_FPS = 30.0  # frames per wall second worth drawing in a live window
SPEED_RANGE = (0.01, 100.0)  # × real time: the playback speeds a replay or a video accepts
_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # .../l2run


class DisplayUnavailable(RuntimeError):
    """No live window can be opened (no display, no Tk, or the display refuses)."""


def check_speed(speed: float) -> float:
    """``speed`` as a float if a finite playback speed in ``SPEED_RANGE``; else ValueError."""
    low, high = SPEED_RANGE
    if not (math.isfinite(speed) and low <= speed <= high):
        raise ValueError(f"speed must be between {low:g} and {high:g} (× real time), got {speed}")
    return float(speed)


# Packages whose frames a warning skips on its way to the user's code: l2run's own, and the
# command-line machinery around `l2run ...` commands (typer, and the click it runs on).
_SKIPPED_PACKAGES = ("typer", "click")


def _skipped_dirs() -> tuple[str, ...]:
    """The folders of l2run and of the loaded `_SKIPPED_PACKAGES`."""
    dirs = [_PACKAGE_DIR]
    for name in _SKIPPED_PACKAGES:
        module = sys.modules.get(name)
        if module is not None and getattr(module, "__file__", None):
            dirs.append(os.path.dirname(os.path.abspath(module.__file__)))
    return tuple(d + os.sep for d in dirs)


def _caller_stacklevel() -> int:
    """The ``stacklevel`` (counted from this function's caller) of the first frame outside l2run
    and the command-line machinery, so that a warning points at the user's code (or the `l2run`
    command) rather than at the viewer."""
    skipped = _skipped_dirs()
    frame, level = sys._getframe(1), 1
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(skipped):
        frame, level = frame.f_back, level + 1
    return level


def _warn_headless_once(reason: str) -> None:
    global _warned_headless
    if not _warned_headless:
        _warned_headless = True
        warnings.warn(
            f"l2run live view unavailable ({reason}); running headless. "
            "On a server, start a virtual display: `xvfb-run -a <command>`.",
            RuntimeWarning,
            stacklevel=_caller_stacklevel(),
        )


def display_available() -> bool:
    """True when a Tk window can be opened (an X display is set and Tk is importable)."""
    if not os.environ.get("DISPLAY") and os.name == "posix":
        return False
    try:
        import tkinter  # noqa: F401
    except ImportError:
        return False
    return True


class LiveViewer:
    """A window showing H×W×3 uint8 frames; without a display a no-op (after one warning), or
    ``DisplayUnavailable`` from ``show`` when ``require_display``."""

    def __init__(
        self,
        title: str = "l2run",
        speed: float = 1.0,
        realtime: bool = True,
        max_fps: float = MAX_DISPLAY_FPS,
        require_display: bool = False,
    ) -> None:
        if not (math.isfinite(speed) and speed > 0):
            raise ValueError(f"speed must be a positive number, got {speed}")
        if not (math.isfinite(max_fps) and max_fps > 0):
            raise ValueError(f"max_fps must be a positive number, got {max_fps}")
        self.require_display = require_display
        self.max_fps = max_fps
        self._last_shown: float | None = None  # wall time of the last frame shown
        self.title = title
        self.speed = speed
        self.realtime = realtime
        self._root: Any = None
        self._label: Any = None
        self._photo: Any = None
        self._clock: tuple[float, float] | None = None  # (wall s, sim s) of the first frame
        self.closed = False
        self.headless = False

    @property
    def is_open(self) -> bool:
        return self._root is not None and not self.closed

    def wants_frame(self) -> bool:
        """False when closed or headless, or under 1/max_fps s since the last frame shown."""
        if self.headless or self.closed:
            return False
        last = self._last_shown
        return last is None or time.perf_counter() - last >= 1.0 / self.max_fps

    def _go_headless(self, reason: str) -> bool:
        if self.require_display:
            raise DisplayUnavailable(reason)
        self.headless = True
        _warn_headless_once(reason)
        return False

    def _open(self) -> bool:
        if self.headless or self.closed:
            return False
        if self._root is not None:
            return True
        if not display_available():
            return self._go_headless("no display: DISPLAY is not set or Tk is missing")
        import tkinter as tk

        try:
            self._root = tk.Tk()
        except tk.TclError as exc:
            return self._go_headless(f"cannot open a window: {exc}")
        self._root.title(self.title)
        self._root.protocol("WM_DELETE_WINDOW", self.close)
        self._label = tk.Label(self._root, borderwidth=0)
        self._label.pack()
        return True

    def show(self, image: np.ndarray, sim_time: float | None = None) -> bool:
        """Display ``image``; returns False when there is no window (headless or closed)."""
        if not self._open():
            return False
        from PIL import Image, ImageTk

        self._pace(sim_time)
        self._photo = ImageTk.PhotoImage(Image.fromarray(np.asarray(image, dtype=np.uint8)))
        self._label.configure(image=self._photo)
        self._last_shown = time.perf_counter()
        try:
            self._root.update()
        except Exception:  # the window was closed under us (Tcl raises its own error types)
            self.close()
            return False
        return not self.closed

    def _pace(self, sim_time: float | None) -> None:
        if not self.realtime or sim_time is None:
            return
        now = time.perf_counter()
        if self._clock is None or sim_time < self._clock[1]:
            self._clock = (now, sim_time)  # first frame, or a new episode
            return
        due = self._clock[0] + (sim_time - self._clock[1]) / self.speed
        if due > now:
            time.sleep(due - now)

    def restart_clock(self) -> None:
        """Call at a reset so the next frame starts a new real-time schedule (and is drawn)."""
        self._clock = None
        self._last_shown = None

    def close(self) -> None:
        self.closed = True
        root, self._root = self._root, None
        if root is not None:
            try:
                root.destroy()
            except Exception:  # already gone
                pass

    def __enter__(self) -> LiveViewer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def play_recording(
    recording: Recording, speed: float = 1.0, camera: Any = None, loop: bool = False
) -> None:
    """Replay a recording in a live window at ``speed`` × real time (until the window closes).

    The frame shown is the one due by the wall clock, so a slow drawing skips frames instead of
    falling behind; the first and last frames are always shown. ``speed`` must lie in
    ``SPEED_RANGE`` (ValueError); ``DisplayUnavailable`` when no window can be opened.
    """
    from l2run.render.frame import recording_hud, render_frame

    speed = check_speed(speed)
    engine = recording.metadata.get("engine", "?")
    viewer = LiveViewer(title=f"l2run replay ({engine})", realtime=False, require_display=True)
    times = recording.time
    last = len(recording) - 1
    try:
        while True:
            start, t = time.perf_counter(), 0
            while True:
                image = render_frame(
                    recording.frame(t), recording.obstacles, camera, recording_hud(recording, t)
                )
                if not viewer.show(image, float(times[t])):
                    return
                if t == last:
                    break
                # next frame due by the wall clock (at least one frame on), waiting for it
                due = times[0] + (time.perf_counter() - start) * speed
                t = max(t + 1, min(last, int(np.searchsorted(times, due, side="right")) - 1))
                wait = (times[t] - times[0]) / speed - (time.perf_counter() - start)
                if wait > 0:
                    time.sleep(wait)
            if not loop:
                return
    finally:
        viewer.close()
