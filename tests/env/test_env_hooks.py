"""RunEnv's hooks to the render area: record= writes one file per episode; visualize=True
without a display warns (once) and runs headless; the real engine's 1000-step limit."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import l2run.env.runenv as runenv
from l2run.env.runenv import RunEnv


def test_record_writes_one_recording_per_episode(tmp_path) -> None:
    from l2run.render.recording import episode_path, load_recording

    path = tmp_path / "episode.npz"
    env = RunEnv(record=path)
    env.reset(difficulty=2, seed=1)
    for _ in range(4):
        env.step(np.full(18, 0.2))
    env.reset(difficulty=0, seed=2)  # closes the first file, opens the second
    env.step(np.zeros(18))
    env.close()
    assert len(list(tmp_path.glob("episode*.npz"))) == 2
    files = [episode_path(path, 0), episode_path(path, 1)]
    first = load_recording(files[0])
    assert len(first) == 5  # the reset state and 4 steps
    from l2run.course import generate_course

    expected = generate_course(np.random.RandomState(1), 2, 3).obstacles
    np.testing.assert_allclose(first.obstacles, expected)
    assert first.metadata["seed"] == 1 and first.metadata["difficulty"] == 2
    assert load_recording(files[1]).obstacles.shape == (0, 3)


def test_visualize_without_display_warns_at_most_once_and_runs(monkeypatch) -> None:
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(2):
            env = RunEnv(visualize=True)
            env.reset(difficulty=0)
            env.step(np.zeros(18))
            env.close()
    headless = [w for w in caught if "headless" in str(w.message)]
    assert len(headless) <= 1  # once per process (an earlier test may have had it)


@pytest.mark.slow
def test_real_engine_done_exactly_at_1000_steps(monkeypatch) -> None:
    """With the fall rule switched off, an OpenSim episode ends at step 1000, not before."""
    monkeypatch.setattr(runenv, "FALL_HEIGHT_M", -np.inf)
    env = RunEnv()
    env.reset(difficulty=0, seed=0)
    dones = [env.step(np.full(18, 0.1))[2] for _ in range(1000)]
    assert not any(dones[:-1]) and dones[-1]
    assert env.engine.time == pytest.approx(10.0)
