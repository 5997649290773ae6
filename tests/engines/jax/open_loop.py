"""Shared by the trajectory tests: fixed excitations from reset, and OpenSim's "truth" engine.

Imports no OpenSim at module level, so test modules that skip without it can still use it.
"""

from __future__ import annotations

import numpy as np

STEPS = 50  # 0.5 s
# Columns of the returned trajectories: q in COORDINATES order (pelvis tilt, x, y, joints).
Q_COLUMNS = [0, 1, 2, 6, 7, 8, 9, 10, 11]  # their observation indices
PELVIS_XY = [1, 2]
ANGLES = [0, 3, 4, 5, 6, 7, 8]
TRUTH_ACCURACY = 1e-7  # RK-Merson accuracy of the OpenSim run the JAX engine is held to


def run_open_loop(engine, excitation: np.ndarray, steps: int = STEPS) -> np.ndarray:
    """(steps, 9) generalized coordinates after each step of `engine` on the flat course."""
    from l2run.course import Course

    engine.reset(Course())
    qs = []
    for _ in range(steps):
        engine.step(excitation)
        qs.append(engine.observation()[Q_COLUMNS])
    return np.array(qs)


def truth_engine():
    """The OpenSim engine at the accuracy taken as truth (skips the test without OpenSim)."""
    import pytest

    pytest.importorskip("opensim")
    from l2run.engines.opensim_engine import OpenSimEngine

    return OpenSimEngine(integrator="rk_merson", accuracy=TRUTH_ACCURACY)
