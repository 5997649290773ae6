"""The default stepping scheme stays within 1 mm of a 1e-7-accuracy run (README's choice)."""

from __future__ import annotations

import numpy as np
import pytest

from l2run.env.runenv import RunEnv

STEPS = 60  # 0.6 s, as in benchmarks/bench_opensim.py
TOLERANCE_M = 1e-3


def smooth_excitations(seed: int = 0) -> np.ndarray:
    rng = np.random.RandomState(seed)
    freq, phase = rng.uniform(1.0, 3.0, 18), rng.uniform(0.0, 2 * np.pi, 18)
    t = 0.01 * np.arange(STEPS)[:, None]
    return 0.5 + 0.5 * np.sin(2 * np.pi * freq * t + phase)


def body_trajectory(**options) -> np.ndarray:
    env = RunEnv(**options)
    env.reset(difficulty=0, seed=0)
    out = []
    for action in smooth_excitations():
        env.step(action)
        out.append([pose[:2] for pose in env.engine.body_poses().values()])
    env.close()
    return np.array(out)


@pytest.mark.parametrize("manager", ["episode", pytest.param("step", marks=pytest.mark.slow)])
def test_default_scheme_is_within_a_millimetre_of_accuracy_1e7(manager: str) -> None:
    reference = body_trajectory(integrator="rk_merson", accuracy=1e-7)
    ours = body_trajectory(manager=manager)
    error = np.abs(ours - reference).max()
    assert error < TOLERANCE_M
    # ...and the comparison can fail: a coarse setting is millimetres off.
    coarse = body_trajectory(integrator="rk2", accuracy=1e-1)
    assert np.abs(coarse - reference).max() > error
