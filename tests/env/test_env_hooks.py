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
    assert first.metadata["obstacle_physics"] == "reported"
    assert load_recording(files[1]).obstacles.shape == (0, 3)
    # osim-rl 1.5's physics: the recording says so and keeps the reported rows
    legacy = RunEnv(record=tmp_path / "legacy.npz", obstacle_physics="osim-rl-1.5")
    legacy.reset(difficulty=2, seed=1)
    legacy.step(np.zeros(18))
    legacy.close()
    recording = load_recording(episode_path(tmp_path / "legacy.npz", 0))
    assert recording.metadata["obstacle_physics"] == "osim-rl-1.5"
    np.testing.assert_allclose(recording.obstacles, expected)


def test_a_record_path_in_upper_case_is_written_where_it_says(tmp_path) -> None:
    """numpy appends .npz to a file name ending otherwise (.NPZ too); recordings are written
    through an open file, so the name is kept."""
    from l2run.render.recording import episode_path, load_recording

    path = tmp_path / "EPISODE.NPZ"
    env = RunEnv(record=path)
    env.reset(difficulty=0, seed=1)
    for _ in range(2):
        env.step(np.full(18, 0.2))
    env.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == [episode_path(path, 0).name]
    assert len(load_recording(episode_path(path, 0))) == 3


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


def test_recordings_say_how_their_episodes_ended(tmp_path, monkeypatch) -> None:
    """A fall, a reset before the end, an integrator failure (its step recorded: the state
    kept, reward −500, the action), each noted in the metadata's "ended_by"."""
    from l2run.engines.base import IntegratorError
    from l2run.env.runenv import INTEGRATOR_FAILURE_REWARD, UNFINISHED_BY_RESET
    from l2run.render.recording import episode_path, load_recording

    path = tmp_path / "episode.npz"
    env = RunEnv(record=path)
    env.reset(difficulty=0, seed=1)
    done, steps = False, 0
    while not done:  # unexcited, the runner falls within ~1.3 s
        _, _, done, _ = env.step(np.zeros(18))
        steps += 1
        assert steps < 300
    env.reset(difficulty=0, seed=1)
    env.step(np.zeros(18))
    env.reset(difficulty=0, seed=1)  # closes episode 1 unfinished
    env.step(np.full(18, 0.3))

    def fail(excitations):
        raise IntegratorError("stub failure")

    monkeypatch.setattr(env.engine, "step", fail)
    _, reward, done, info = env.step(np.full(18, 0.4))
    assert done and reward == INTEGRATOR_FAILURE_REWARD
    fell, cut, failed = (load_recording(episode_path(path, i)) for i in range(3))
    assert fell.metadata["ended_by"] == "fall" and len(fell) == steps + 1
    assert cut.metadata["ended_by"] == UNFINISHED_BY_RESET and len(cut) == 2
    assert failed.metadata["ended_by"] == info["error"] and len(failed) == 3
    assert failed.reward[-1] == INTEGRATOR_FAILURE_REWARD
    np.testing.assert_array_equal(failed.action[-1], 0.4)
    np.testing.assert_array_equal(failed.body_pose[-1], failed.body_pose[-2])  # state kept
    env.close()


def test_a_record_path_that_cannot_be_written_fails_at_construction(tmp_path) -> None:
    (tmp_path / "a_file").write_text("x")
    (tmp_path / "folder.npz").mkdir()
    for bad, match in (
        (tmp_path / "a_file" / "episode.npz", "cannot write"),
        (tmp_path / "folder.npz", "it is a folder"),
        (tmp_path / "episode.npy", "must end in .npz"),
    ):
        with pytest.raises(ValueError, match=match):
            RunEnv(record=bad)
    RunEnv(record=tmp_path / "new" / "folders" / "episode.npz").close()  # folders are made
    assert (tmp_path / "new" / "folders").is_dir()


def test_an_episode_left_open_is_recorded_when_the_program_ends(tmp_path) -> None:
    """A script that exits mid-episode, without close(), keeps its recording; so does an
    env dropped mid-episode."""
    import subprocess
    import sys

    from l2run.render.recording import UNFINISHED, load_recording

    script = (
        "import sys; import numpy as np; from l2run import RunEnv\n"
        "dropped = RunEnv(record=sys.argv[2]); dropped.reset(difficulty=0, seed=1)\n"
        "dropped.step(np.zeros(18)); del dropped\n"
        "env = RunEnv(record=sys.argv[1]); env.reset(difficulty=0, seed=1)\n"
        "for _ in range(7): env.step(np.full(18, 0.2))\n"
        "raise SystemExit(3)\n"
    )
    left, dropped = tmp_path / "left.npz", tmp_path / "dropped.npz"
    run = subprocess.run(
        [sys.executable, "-c", script, str(left), str(dropped)], capture_output=True, text=True
    )
    assert run.returncode == 3, run.stderr
    recording = load_recording(left)
    assert len(recording) == 8 and recording.metadata["ended_by"] == UNFINISHED
    assert len(load_recording(dropped)) == 2


def test_an_earlier_runs_later_episodes_are_pointed_out(tmp_path) -> None:
    """Recording again to the same path renumbers from the start: the older run's later
    episode files are named in a warning (and left alone) instead of mixing in silently."""
    path = tmp_path / "episode.npz"
    for index in (1, 2, 3):
        (tmp_path / f"episode-{index:04d}.npz").write_bytes(b"an older run's")
    with pytest.warns(UserWarning, match=r"3 recordings of an earlier run .*episode-0003\.npz"):
        env = RunEnv(record=path)
        env.reset(difficulty=0, seed=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        env.reset(difficulty=0, seed=2)  # said once, at the first episode
    env.close()
    assert (tmp_path / "episode-0003.npz").read_bytes() == b"an older run's"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        RunEnv(record=tmp_path / "fresh.npz").reset(difficulty=0)  # nothing to point out
