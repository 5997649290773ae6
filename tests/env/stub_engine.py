"""A stand-in engine for RunEnv tests that need no physics."""

from __future__ import annotations

import numpy as np

from l2run.course import Course


class StandingStubEngine:
    """A stand-in engine whose pelvis walks forward 1 mm a step and never falls (fast tests)."""

    name = "stub"

    def __init__(self) -> None:
        self.course = Course()
        self._t = 0
        self.fail_at: int | None = None

    def reset(self, course: Course) -> None:
        self.course = course
        self._t = 0

    def step(self, excitations: np.ndarray) -> None:
        from l2run.engines.base import IntegratorError

        assert excitations.shape == (18,) and np.all((0 <= excitations) & (excitations <= 1))
        if self.fail_at is not None and self._t >= self.fail_at:
            raise IntegratorError("stub failure")
        self._t += 1

    @property
    def time(self) -> float:
        return 0.01 * self._t

    def observation(self) -> np.ndarray:
        obs = np.zeros(41)
        obs[1], obs[2] = 0.001 * self._t, 0.9
        return obs

    def ligament_forces(self) -> np.ndarray:
        return np.zeros(6)

    def body_poses(self):
        return {"pelvis": (0.001 * self._t, 0.9, 0.0)}

    def muscle_paths(self):
        return [np.zeros((2, 2)) for _ in range(18)]

    def activations(self) -> np.ndarray:
        return np.zeros(18)

    def fiber_lengths(self) -> np.ndarray:
        return np.full(18, 0.1)

    def contact_forces(self):
        return {"foot_r": np.zeros(2), "foot_l": np.zeros(2)}
