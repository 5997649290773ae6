"""What an engine must offer the environment (both the OpenSim and the JAX engine do).

Units and frames: m, rad, N, N·m, s; positions in the ground frame (x forward, y up).
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np

from l2run.course import Course

STEP_SIZE_S = 0.01  # one environment step (osim-rl 1.5's `stepsize`)
# The episode rules, shared by RunEnv and the JAX engine's pure step.
TIMESTEP_LIMIT = 1000  # steps per episode (10 s)
FALL_HEIGHT_M = 0.65  # pelvis y below this ends the episode
INTEGRATOR_FAILURE_REWARD = -500.0  # osim-rl 1.5's reward when the integrator fails
FLOAT_DTYPES = ("float64", "float32")  # what the JAX engine computes in


def float_dtype_name(dtype: Any) -> str:
    """ "float64" or "float32" for that name or a numpy/JAX dtype or type of it; ValueError
    otherwise (None included: numpy would read it as float64)."""
    name = None
    if dtype is not None and not isinstance(dtype, bool):
        try:
            name = np.dtype(dtype).name
        except TypeError:
            pass
    if name not in FLOAT_DTYPES:
        raise ValueError(f"dtype must be one of {FLOAT_DTYPES} (a name or a dtype), got {dtype!r}")
    return name


class IntegratorError(RuntimeError):
    """The integrator could not advance the state (NaN, step-size underflow, ...)."""


@runtime_checkable
class Engine(Protocol):
    """A musculoskeletal simulator of the 2017 runner, stepped 0.01 s at a time."""

    name: str  # "opensim" | "jax"

    def reset(self, course: Course) -> None:
        """Model default state; place the course's obstacles and set its psoas strength."""

    def step(self, excitations: np.ndarray) -> None:
        """Hold (18,) excitations in [0, 1] (MUSCLES order; clipped) for 0.01 s.

        Raises ValueError for a NaN or infinite excitation and IntegratorError when the state
        cannot be advanced; either way the state is left as it was.
        """

    @property
    def time(self) -> float:
        """Simulated time, s."""

    def observation(self) -> np.ndarray:
        """(41,) float64, built by `l2run.observation.assemble`."""

    def ligament_forces(self) -> np.ndarray:
        """(6,) generalized forces of the CoordinateLimitForces, LIGAMENTS order, N·m."""

    def body_poses(self) -> dict[str, tuple[float, float, float]]:
        """Every body: origin x, y (m) and rotation about z (rad), ground frame."""

    def muscle_paths(self) -> list[np.ndarray]:
        """18 arrays (k_i, 2): path point x, y in ground (m), MUSCLES order."""

    def activations(self) -> np.ndarray:
        """(18,) muscle activations, MUSCLES order."""

    def fiber_lengths(self) -> np.ndarray:
        """(18,) fiber lengths, m, MUSCLES order."""

    def contact_forces(self) -> dict[str, np.ndarray]:
        """Ground reaction on each foot: "foot_r"/"foot_l" -> (fx, fy), N, ground frame."""
