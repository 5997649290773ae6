"""The observation layout and the obstacle look-ahead, under numpy and under jax.jit/vmap."""

from __future__ import annotations

import numpy as np
import pytest

from l2run.model.names import COORDINATES, OBS_BODIES
from l2run.observation import (
    MAX_OBSTACLE_SLOTS,
    NO_OBSTACLE,
    OBSERVATION_NAMES,
    assemble,
    ligament_penalty,
    next_obstacle,
    pad_obstacles,
)


def loop_next_obstacle(obstacles, pelvis_x):
    """osim-rl 1.5's RunEnv.next_obstacle, as a loop over obstacles sorted by x."""
    for obstacle in sorted(map(tuple, obstacles)):
        if obstacle[0] + obstacle[2] < pelvis_x:
            continue
        return [obstacle[0] - pelvis_x, obstacle[1], obstacle[2]]
    return list(NO_OBSTACLE)


def test_names() -> None:
    assert len(OBSERVATION_NAMES) == 41 == len(set(OBSERVATION_NAMES))
    assert OBSERVATION_NAMES[:3] == ("pelvis_tilt", "pelvis_tx", "pelvis_ty")
    assert OBSERVATION_NAMES[-5:] == (
        "psoas_l",
        "psoas_r",
        "obstacle_dx",
        "obstacle_y",
        "obstacle_r",
    )


def test_assemble_places_every_input_where_the_seed_says() -> None:
    q = np.arange(9) + 100.0
    u = np.arange(9) + 200.0
    com, com_v = np.array([300.0, 301.0]), np.array([310.0, 311.0])
    body_xy = np.arange(14).reshape(7, 2) + 400.0
    psoas = np.array([0.9, 1.1])
    obs = assemble(q, u, com, com_v, body_xy, psoas, np.zeros((0, 3)))
    assert obs.shape == (41,)
    value = dict(zip(OBSERVATION_NAMES, obs, strict=True))
    # Written out from the seed's description, not from the module under test.
    for i, c in enumerate(COORDINATES):  # pelvis tilt, x, y, then hip, knee, ankle r, then l
        assert value[c] == 100 + i and value[f"{c}_speed"] == 200 + i
    assert list(OBSERVATION_NAMES[:6]) == [c for c in COORDINATES[:3]] + [
        f"{c}_speed" for c in COORDINATES[:3]
    ]
    assert COORDINATES[3:6] == ("hip_flexion_r", "knee_angle_r", "ankle_angle_r")
    assert [value["com_x"], value["com_y"], value["com_vx"], value["com_vy"]] == [
        300,
        301,
        310,
        311,
    ]
    for i, b in enumerate(OBS_BODIES):
        assert (value[f"{b}_x"], value[f"{b}_y"]) == (400 + 2 * i, 401 + 2 * i)
    assert OBS_BODIES == ("head", "pelvis", "torso", "toes_l", "toes_r", "talus_l", "talus_r")
    assert (value["psoas_l"], value["psoas_r"]) == (0.9, 1.1)
    assert [value["obstacle_dx"], value["obstacle_y"], value["obstacle_r"]] == [100, 0, 0]


def test_next_obstacle_edges() -> None:
    obstacles = np.array([[1.0, 0.01, 0.1], [3.0, -0.02, 0.2]])
    np.testing.assert_allclose(next_obstacle(obstacles, 0.0), [1.0, 0.01, 0.1])
    # Still ahead while x + r >= pelvis x (exactly at the far edge counts as ahead).
    np.testing.assert_allclose(next_obstacle(obstacles, 1.1), [-0.1, 0.01, 0.1])
    np.testing.assert_allclose(next_obstacle(obstacles, 1.1000001), [1.8999999, -0.02, 0.2])
    np.testing.assert_allclose(next_obstacle(obstacles, 3.3), list(NO_OBSTACLE))
    np.testing.assert_allclose(next_obstacle(np.zeros((0, 3)), 0.0), list(NO_OBSTACLE))


def test_next_obstacle_matches_loop_and_padding_is_never_ahead() -> None:
    rng = np.random.RandomState(0)
    for _ in range(300):
        n = rng.randint(0, 12)
        obstacles = np.column_stack(
            [rng.uniform(-2, 30, n), rng.uniform(-0.1, 0.1, n), rng.uniform(0.05, 0.3, n)]
        )
        pelvis_x = rng.uniform(-3, 32)
        expected = loop_next_obstacle(obstacles, pelvis_x)
        np.testing.assert_allclose(next_obstacle(obstacles, pelvis_x), expected)
        padded = pad_obstacles(obstacles)
        assert padded.shape == (MAX_OBSTACLE_SLOTS, 3)
        np.testing.assert_allclose(next_obstacle(padded, pelvis_x), expected)


def test_pad_rejects_too_many() -> None:
    with pytest.raises(ValueError, match="at most"):
        pad_obstacles(np.zeros((MAX_OBSTACLE_SLOTS + 1, 3)))


def test_ligament_penalty() -> None:
    forces = np.array([3.0, -4.0, 0.0, 12.0, 0.0, 0.0])
    assert ligament_penalty(forces) == pytest.approx(1e-7 * 13.0)


def test_works_under_jax_jit_and_vmap() -> None:
    jax = pytest.importorskip("jax")
    jnp = jax.numpy
    rng = np.random.RandomState(1)
    batch = 16
    obstacles = np.stack(
        [pad_obstacles(np.sort(rng.uniform(0, 5, (3, 3)), axis=0)) for _ in range(batch)]
    )
    q = rng.normal(size=(batch, 9))
    u = rng.normal(size=(batch, 9))
    com, com_v = rng.normal(size=(batch, 2)), rng.normal(size=(batch, 2))
    body_xy, psoas = rng.normal(size=(batch, 7, 2)), rng.uniform(0.5, 1.5, (batch, 2))

    def f(*args):
        return assemble(*args, xp=jnp)

    out = jax.jit(jax.vmap(f))(q, u, com, com_v, body_xy, psoas, obstacles)
    for i in range(batch):
        expected = assemble(q[i], u[i], com[i], com_v[i], body_xy[i], psoas[i], obstacles[i])
        np.testing.assert_allclose(np.asarray(out[i]), expected, rtol=1e-6, atol=1e-6)
    pen = jax.jit(lambda f: ligament_penalty(f, xp=jnp))(jnp.ones(6))
    assert float(pen) == pytest.approx(1e-7 * np.sqrt(6.0), rel=1e-6)
