"""`RecordEpisode`: a gymnasium wrapper that writes each episode of an l2run env to a recording.

    env = RecordEpisode(gymnasium.make("l2run/Run-v0", engine="jax"), "runs/")
    # -> runs/episode-0000.npz, runs/episode-0001.npz, ...  (see l2run.render.recording)

Works on any env whose unwrapped object is a `RunEnv` or holds one as ``run_env`` (the
``l2run/Run-v0`` gymnasium env does). ``episode_trigger(n) -> bool`` picks which episodes to keep
(default: all).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from l2run.render.recording import Recorder


def _run_env(env: gym.Env) -> Any:
    unwrapped = env.unwrapped
    run_env = getattr(unwrapped, "run_env", unwrapped)
    if not hasattr(run_env, "engine"):
        raise ValueError(
            f"RecordEpisode needs an l2run env (RunEnv or l2run/Run-v0), got {type(unwrapped)!r}"
        )
    return run_env


class RecordEpisode(gym.Wrapper):
    """Record episodes to ``folder/<name_prefix>-<n:04d>.npz`` (n counts from 0)."""

    def __init__(
        self,
        env: gym.Env,
        folder: str | os.PathLike[str],
        name_prefix: str = "episode",
        episode_trigger: Callable[[int], bool] | None = None,
    ) -> None:
        super().__init__(env)
        self.run_env = _run_env(env)
        self.folder = Path(folder)
        self.name_prefix = name_prefix
        self.episode_trigger = episode_trigger or (lambda _n: True)
        self.episode_id = -1
        self.recorder: Recorder | None = None
        self.written: list[Path] = []

    def _finish(self) -> None:
        if self.recorder is not None:
            path = self.recorder.close()
            if path is not None:
                self.written.append(path)
            self.recorder = None

    def reset(self, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        self._finish()
        obs, info = self.env.reset(**kwargs)
        self.episode_id += 1
        if self.episode_trigger(self.episode_id):
            course = self.run_env.course
            path = self.folder / f"{self.name_prefix}-{self.episode_id:04d}.npz"
            self.recorder = Recorder(
                path,
                {
                    "engine": self.run_env.engine.name,
                    "seed": getattr(course, "seed", None),
                    "difficulty": getattr(course, "difficulty", None),
                    "obstacles": getattr(course, "obstacles", None),
                    "psoas": getattr(course, "psoas", None),
                    "episode": self.episode_id,
                },
            )
            self.recorder.capture(self.run_env.engine)
        return obs, info

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        if self.recorder is not None:
            if "error" not in info:  # an integrator failure leaves no new state to record
                excitations = np.clip(np.asarray(action, dtype=float), 0.0, 1.0)
                self.recorder.capture(self.run_env.engine, reward=reward, action=excitations)
            if terminated or truncated:
                self._finish()
        return obs, reward, terminated, truncated, info

    def close(self) -> None:
        self._finish()
        super().close()
