"""The course generator against a straight transcription of osim-rl 1.5's `generate_env`."""

from __future__ import annotations

import numpy as np
import pytest

from l2run.course import Course, generate_course


def transcribed_osim_rl_15(rng: np.random.RandomState, difficulty: int, max_obstacles: int):
    """osim-rl 1.5's RunEnv.generate_env, written out line by line (global np.random -> rng)."""
    num_obstacles = 0
    xs = []
    ys = []
    rs = []
    if 0 < difficulty:
        num_obstacles = min(3, max_obstacles)
        xs = rng.uniform(1.0, 5.0, num_obstacles)
        ys = rng.uniform(-0.25, 0.25, num_obstacles)
        rs = [0.05 + r for r in rng.exponential(0.05, num_obstacles)]
    if 0 < difficulty and 3 < max_obstacles:
        extra_obstacles = max(min(20, max_obstacles) - num_obstacles, 0)
        xs = np.concatenate([xs, (np.cumsum(rng.uniform(2.0, 4.0, extra_obstacles)) + 5)])
        ys = np.concatenate([ys, rng.uniform(-0.05, 0.25, extra_obstacles)])
        rs = rs + [0.05 + r for r in rng.exponential(0.05, extra_obstacles)]
    ys = [xy[0] * xy[1] for xy in zip(ys, rs, strict=True)]
    rpsoas = 1
    lpsoas = 1
    if difficulty >= 2:
        rpsoas = 1 - rng.normal(0, 0.1)
        lpsoas = 1 - rng.normal(0, 0.1)
        rpsoas = max(0.5, rpsoas)
        lpsoas = max(0.5, lpsoas)
    obstacles = list(zip(xs, ys, rs, strict=True))
    obstacles.sort()
    return obstacles, (lpsoas, rpsoas)


@pytest.mark.parametrize("difficulty", [0, 1, 2])
@pytest.mark.parametrize("max_obstacles", [0, 1, 3, 4, 10, 20, 25])
def test_course_matches_transcription(difficulty: int, max_obstacles: int) -> None:
    for seed in range(25):
        ours = generate_course(np.random.RandomState(seed), difficulty, max_obstacles, seed=seed)
        obstacles, psoas = transcribed_osim_rl_15(
            np.random.RandomState(seed), difficulty, max_obstacles
        )
        expected = np.array(obstacles, dtype=float).reshape(-1, 3)
        np.testing.assert_array_equal(ours.obstacles, expected)
        assert ours.psoas == psoas
        assert ours.difficulty == difficulty and ours.seed == seed


def test_stream_continues_like_osim_rl() -> None:
    """seed=None continues the same stream: several courses in a row match the transcription."""
    ours_rng, theirs_rng = np.random.RandomState(7), np.random.RandomState(7)
    for difficulty in [2, 1, 0, 2, 2]:
        ours = generate_course(ours_rng, difficulty, 10)
        obstacles, psoas = transcribed_osim_rl_15(theirs_rng, difficulty, 10)
        np.testing.assert_array_equal(ours.obstacles, np.array(obstacles).reshape(-1, 3))
        assert ours.psoas == psoas


def test_course_properties() -> None:
    rng = np.random.RandomState(3)
    for _ in range(200):
        course = generate_course(rng, 2, 10)
        x, y, r = course.obstacles.T
        assert course.obstacles.shape == (10, 3)
        assert np.all(np.diff(x) >= 0)
        assert np.all(r >= 0.05)
        assert np.all(np.abs(y) <= 0.25 * r + 1e-15)
        assert min(course.psoas) >= 0.5
    assert generate_course(rng, 0, 10).obstacles.shape == (0, 3)
    assert generate_course(rng, 1, 10).psoas == (1.0, 1.0)


def test_uses_only_the_given_generator() -> None:
    np.random.seed(123)
    before = np.random.get_state()[1].copy()
    generate_course(np.random.RandomState(1), 2, 10)
    assert np.array_equal(np.random.get_state()[1], before)


@pytest.mark.parametrize("difficulty", [3, -1, 1.5, "2", None, True])
def test_bad_difficulty(difficulty: object) -> None:
    with pytest.raises(ValueError, match="difficulty"):
        generate_course(np.random.RandomState(0), difficulty, 3)  # type: ignore[arg-type]


@pytest.mark.parametrize("max_obstacles", [-1, 2.0, "3"])
def test_bad_max_obstacles(max_obstacles: object) -> None:
    with pytest.raises(ValueError, match="max_obstacles"):
        generate_course(np.random.RandomState(0), 1, max_obstacles)  # type: ignore[arg-type]


def test_course_is_immutable_and_comparable() -> None:
    a = generate_course(np.random.RandomState(5), 2, 3)
    b = generate_course(np.random.RandomState(5), 2, 3)
    assert a == b and a != Course()
    with pytest.raises(ValueError):
        a.obstacles[0, 0] = 0.0


def test_osim_rl_15_obstacle_physics_simulates_0_1_m_spheres_and_the_unused_slots() -> None:
    from l2run.course import (
        OBSTACLE_PHYSICS,
        check_engine_obstacle_physics,
        check_reported_obstacles,
        with_obstacle_physics,
    )

    drawn = generate_course(np.random.RandomState(8), 2, 3, seed=8)
    legacy = with_obstacle_physics(drawn, "osim-rl-1.5", 3)
    np.testing.assert_array_equal(legacy.obstacles, drawn.obstacles)  # what is reported
    np.testing.assert_array_equal(legacy.simulated_obstacles[:, :2], drawn.obstacles[:, :2])
    np.testing.assert_array_equal(legacy.simulated_obstacles[:, 2], [0.1, 0.1, 0.1])
    assert legacy != drawn and legacy.psoas == drawn.psoas
    # slots the course leaves unused (difficulty 0 draws no obstacle): 1.5 left each one's
    # sphere at (0, -0.1)
    empty = with_obstacle_physics(
        generate_course(np.random.RandomState(8), 0, 5), OBSTACLE_PHYSICS[1], 5
    )
    np.testing.assert_array_equal(empty.simulated_obstacles, np.tile([0.0, -0.1, 0.1], (5, 1)))
    assert empty.obstacles.shape == (0, 3)
    # "reported" simulates what is reported, and undoes the other
    assert with_obstacle_physics(legacy, "reported", 3) == drawn
    assert drawn.simulated_obstacles is drawn.obstacles
    with pytest.raises(ValueError, match="obstacle_physics must be one of"):
        with_obstacle_physics(drawn, "2017", 3)
    with pytest.raises(ValueError, match="max_obstacles <= 20"):
        with_obstacle_physics(drawn, "osim-rl-1.5", 21)
    # only the OpenSim engine runs it
    assert check_engine_obstacle_physics("osim-rl-1.5", "opensim") == "osim-rl-1.5"
    assert check_engine_obstacle_physics("reported", "jax") == "reported"
    with pytest.raises(ValueError, match="OpenSim engine only"):
        check_engine_obstacle_physics("osim-rl-1.5", "jax")
    check_reported_obstacles(drawn)
    with pytest.raises(ValueError, match="OpenSim engine only"):
        check_reported_obstacles(legacy)
