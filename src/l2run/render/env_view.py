"""What an environment shows: ``render_mode="rgb_array"`` frames or a live window ("human").

An environment holds one :class:`EnvView` and makes four calls::

    view = EnvView(render_mode)                  # None | "rgb_array" | "human"
    view.reset(engine, course.obstacles)         # after engine.reset(course)
    view.step(reward)                            # after every engine.step(...)
    frame = view.render()                        # env.render(): (H, W, 3) uint8, or None
    view.close()

In "human" mode ``reset`` and ``step`` draw the window themselves (gymnasium's convention), so
``render()`` returns None. Nothing is drawn in ``rgb_array`` mode until ``render()`` is called.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from l2run.render.frame import Camera, Hud, render_frame
from l2run.render.recording import capture_frame

RENDER_MODES = ("rgb_array", "human")


class EnvView:
    """Keeps the HUD totals (distance, reward) and draws the engine's state on demand."""

    def __init__(
        self,
        render_mode: str | None,
        camera: Camera | None = None,
        speed: float = 1.0,
        label: str = "",
    ) -> None:
        if render_mode is not None and render_mode not in RENDER_MODES:
            raise ValueError(
                f"render_mode must be one of {RENDER_MODES} or None, got {render_mode!r}"
            )
        self.render_mode = render_mode
        self.camera = camera or Camera()
        self.label = label
        self._engine: Any = None
        self._obstacles = np.zeros((0, 3))
        self._start_x = 0.0
        self._total = 0.0
        self._viewer: Any = None
        if render_mode == "human":
            from l2run.render.live import LiveViewer

            self._viewer = LiveViewer(title="l2run", speed=speed)

    def reset(self, engine: Any, obstacles: np.ndarray | Sequence[Sequence[float]] = ()) -> None:
        self._engine = engine
        self._obstacles = np.asarray(obstacles, dtype=float).reshape(-1, 3)
        self._start_x = float(engine.body_poses()["pelvis"][0])
        self._total = 0.0
        self.label = self.label or str(getattr(engine, "name", ""))
        if self._viewer is not None:
            self._viewer.restart_clock()
            self._show()

    def step(self, reward: float) -> None:
        self._total += float(reward)
        if self._viewer is not None:
            self._show()

    def frame(self) -> np.ndarray:
        """The engine's current state drawn with the HUD, (H, W, 3) uint8."""
        if self._engine is None:
            raise ValueError("nothing to render before the first reset()")
        snap = capture_frame(self._engine, observe=False)
        pelvis_x = float(snap.body_poses["pelvis"][0]) if "pelvis" in snap.body_poses else 0.0
        hud = Hud(snap.time, pelvis_x - self._start_x, self._total, self.label)
        return render_frame(snap, self._obstacles, self.camera, hud)

    def _show(self, force: bool = False) -> None:
        # draw only as often as the window wants frames: drawing every step would slow a run
        viewer = self._viewer
        if viewer.headless or viewer.closed:
            return
        if force or viewer.wants_frame():
            viewer.show(self.frame(), float(self._engine.time))

    def render(self) -> np.ndarray | None:
        if self.render_mode == "rgb_array":
            return self.frame()
        if self.render_mode == "human" and self._engine is not None:
            self._show(force=True)
        return None

    def close(self) -> None:
        if self._viewer is not None:
            self._viewer.close()
