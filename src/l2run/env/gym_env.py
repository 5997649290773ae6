"""`l2run/Run-v0`: the runner as a gymnasium environment.

    env = gymnasium.make("l2run/Run-v0", engine="opensim", max_obstacles=3, render_mode=None)
    obs, info = env.reset(seed=1, options={"difficulty": 2})

| space       | shape | dtype   | meaning                                                     |
|-------------|-------|---------|-------------------------------------------------------------|
| action      | (18,) | float32 | excitations in [0, 1], MUSCLES order (right leg, then left) |
| observation | (41,) | float64 | the seed's observation, `l2run.observation.OBSERVATION_NAMES` |

`terminated`: the pelvis fell below 0.65 m (or the integrator failed: reward −500,
`info["error"]`); `truncated`: 1000 steps (10 s) without a fall. `reset(seed=s)` seeds the course
generator exactly as `RunEnv.reset(seed=s)`; without a seed the course stream continues.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from l2run.course import check_difficulty
from l2run.env.runenv import TIMESTEP_LIMIT, RunEnv, check_seed

RENDER_FPS = 100  # one frame per 0.01 s step


class RunGymEnv(gym.Env):
    """Gymnasium wrapper around `RunEnv` (see the module docstring)."""

    metadata = {"render_modes": ["human", "rgb_array"], "render_fps": RENDER_FPS}

    def __init__(
        self,
        render_mode: str | None = None,
        engine: str = "opensim",
        max_obstacles: int = 3,
        difficulty: int = 2,
        record: str | None = None,
        **engine_options: Any,
    ) -> None:
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(
                f"render_mode must be None or one of {self.metadata['render_modes']}, "
                f"got {render_mode!r}"
            )
        self.render_mode = render_mode
        self.difficulty = check_difficulty(difficulty)
        self.run_env = RunEnv(
            visualize=render_mode == "human",
            max_obstacles=max_obstacles,
            engine=engine,
            record=record,
            **engine_options,
        )
        self.action_space = self.run_env.action_space
        self.observation_space = self.run_env.observation_space
        self._frames: Any = None  # rgb_array drawing (render area's EnvView)
        if render_mode == "rgb_array":
            from l2run.render.env_view import EnvView

            self._frames = EnvView("rgb_array")

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        options = dict(options or {})
        unknown = set(options) - {"difficulty"}
        if unknown:
            raise ValueError(f"unknown reset options {sorted(unknown)}; expected 'difficulty'")
        difficulty = check_difficulty(options.get("difficulty", self.difficulty))
        check_seed(seed)
        super().reset(seed=seed)  # after the checks: a refused reset changes nothing
        obs = self.run_env.reset(difficulty=difficulty, seed=seed)
        if self._frames is not None:
            self._frames.reset(self.run_env.engine, self.run_env.course.obstacles)
        info = {"course": self.run_env.course}
        return np.asarray(obs, dtype=np.float64), info

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        obs, reward, done, info = self.run_env.step(action)
        fell = self.run_env.is_pelvis_too_low() or "error" in info
        terminated = bool(done and fell)
        truncated = bool(done and not fell and self.run_env.istep >= TIMESTEP_LIMIT)
        if self._frames is not None:
            self._frames.step(reward)
        return np.asarray(obs, dtype=np.float64), float(reward), terminated, truncated, info

    def render(self) -> np.ndarray | None:
        if self._frames is not None:
            return self._frames.render()
        return None

    def close(self) -> None:
        self.run_env.close()
