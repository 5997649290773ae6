"""Recording and rgb_array frames from the real environment (OpenSim engine, short episodes)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from l2run.render.frame import PELVIS_MARKER, Camera
from l2run.render.recording import load_recording

STEPS = 30


@pytest.fixture(scope="module", autouse=True)
def _needs_reference_model():
    from l2run.model.definition import reference_model_path

    if reference_model_path() is None:
        pytest.skip("reference model folder ../shared/reference absent: OpenSim tests skipped")


def test_runenv_record_writes_every_step(tmp_path: Path) -> None:
    from l2run.env.runenv import RunEnv

    path = tmp_path / "episode.npz"
    env = RunEnv(visualize=False, record=path)
    env.reset(difficulty=2, seed=5)
    actions = np.random.RandomState(0).uniform(0, 1, (STEPS, 18))
    poses, rewards = [], []
    for action in actions:
        _, reward, done, info = env.step(action)
        poses.append(info["state"]["body_poses"])
        rewards.append(reward)
        assert not done
    obstacles = env.course.obstacles
    env.close()
    rec = load_recording(path)
    assert len(rec) == STEPS + 1
    assert rec.metadata["engine"] == "opensim" and rec.metadata["seed"] == 5
    assert rec.metadata["difficulty"] == 2
    np.testing.assert_allclose(rec.obstacles, obstacles)
    np.testing.assert_allclose(rec.reward[1:], rewards)
    np.testing.assert_allclose(rec.action[1:], actions)
    np.testing.assert_allclose(rec.time, np.arange(STEPS + 1) * 0.01, atol=1e-9)
    for t in (1, STEPS // 2, STEPS):
        for body, pose in poses[t - 1].items():
            np.testing.assert_allclose(rec.body_pose[t, rec.bodies.index(body)], pose)
    assert (rec.muscle_counts >= 2).all()


def test_gym_rgb_array_and_record_episode(tmp_path: Path) -> None:
    import gymnasium

    from l2run.render.wrappers import RecordEpisode

    env = RecordEpisode(gymnasium.make("l2run/Run-v0", render_mode="rgb_array"), tmp_path)
    env.reset(seed=5, options={"difficulty": 0})
    for _ in range(STEPS):
        _, _, terminated, truncated, info = env.step(np.full(18, 0.2))
        assert not (terminated or truncated)
    image = env.render()
    pelvis = info["state"]["body_poses"]["pelvis"]
    env.close()
    cam = Camera()
    assert image.shape == (cam.height, cam.width, 3) and image.dtype == np.uint8
    col, row = cam.to_pixels(pelvis[:2], pelvis[0])
    assert np.abs(image[round(row), round(col)].astype(int) - PELVIS_MARKER).max() <= 10
    rec = load_recording(tmp_path / "episode-0000.npz")
    assert len(rec) == STEPS + 1 and rec.metadata["difficulty"] == 0
    np.testing.assert_allclose(rec.body_pose[-1, rec.bodies.index("pelvis")], pelvis)


def test_runenv_visualize_opens_window_under_xvfb(xvfb_display, monkeypatch) -> None:
    from PIL import ImageGrab

    from l2run.env.runenv import RunEnv

    monkeypatch.setenv("DISPLAY", xvfb_display)
    env = RunEnv(visualize=True)
    try:
        env.reset(difficulty=0, seed=1)
        for _ in range(5):
            env.step(np.full(18, 0.1))
        shot = np.asarray(ImageGrab.grab(xdisplay=xvfb_display).convert("RGB")).astype(int)
    finally:
        env.close()
    marker = np.all(np.abs(shot - PELVIS_MARKER) <= 12, axis=-1).sum()
    assert marker > 10, "the live window does not show the runner"


@pytest.mark.slow  # compiling the JAX engine takes tens of seconds on a shared CPU
def test_jax_engine_records_and_renders(tmp_path: Path) -> None:
    from l2run.env.runenv import RunEnv
    from l2run.render.frame import render_frame

    path = tmp_path / "jax.npz"
    env = RunEnv(engine="jax", record=path)
    env.reset(difficulty=2, seed=3)
    for _ in range(5):
        env.step(np.full(18, 0.2))
    env.close()
    rec = load_recording(path)
    assert len(rec) == 6 and rec.metadata["engine"] == "jax"
    assert (rec.muscle_counts >= 2).all() and np.isfinite(rec.body_pose).all()
    image = render_frame(rec.frame(-1), rec.obstacles)
    pelvis = rec.body_xy("pelvis")[-1]
    col, row = Camera().to_pixels(pelvis, pelvis[0])
    assert np.abs(image[round(row), round(col)].astype(int) - PELVIS_MARKER).max() <= 10
