"""The seed's 41-value observation, assembled in one place for both engines.

Every function takes an array namespace `xp` (numpy by default, `jax.numpy` under jit/vmap) and
branches only on shapes, never on values, so the JAX engine can trace them.

| index | names                               | unit         | frame              |
|-------|-------------------------------------|--------------|--------------------|
| 0–2   | pelvis tilt, x, y                   | rad, m, m    | ground             |
| 3–5   | pelvis tilt speed, vx, vy           | rad/s, m/s   | ground             |
| 6–11  | hip, knee, ankle angle: right, left | rad          | joint              |
| 12–17 | the same joints' speeds             | rad/s        | joint              |
| 18–19 | centre of mass x, y²                | m            | ground             |
| 20–21 | centre of mass vx, vy²              | m/s          | ground             |
| 22–35 | x, y of the OBS_BODIES origins¹   | m            | ground             |
| 36–37 | psoas strength left, right          | multiplier   | —                  |
| 38–40 | next obstacle: x − pelvis x, y of centre, radius | m | ground |

¹ head, pelvis, torso, toes_l, toes_r, talus_l, talus_r.
² of the runner's bodies; osim-rl 1.5's also counted its obstacles' three 1e-4 kg bodies
(≤ 1e-4 m apart; README "Deliberate differences").
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from l2run.model.names import COORDINATES, OBS_BODIES

MAX_OBSTACLE_SLOTS = 20
# What the observation shows when no obstacle is ahead (osim-rl 1.5's [100, 0, 0]).
NO_OBSTACLE = (100.0, 0.0, 0.0)
# x of padding rows: far behind any reachable pelvis position, so a padding row is never ahead
# (finite, unlike -inf, so gradients through `where` stay NaN-free under JAX).
PADDING_X_M = -1.0e9
# Ligament penalty weight: osim-rl 1.5 wrote `sqrt(sum f^2) * 10e-8`, i.e. 1e-7.
LIGAMENT_PENALTY_WEIGHT = 1e-7

_JOINT_COORDINATES = COORDINATES[3:]  # hip, knee, ankle right, then left

# Coordinates keep OpenSim's names (pelvis_tx, ...); body origins are "<body>_x"/"<body>_y".
OBSERVATION_NAMES: tuple[str, ...] = (
    COORDINATES[0:3]
    + tuple(f"{c}_speed" for c in COORDINATES[0:3])
    + _JOINT_COORDINATES
    + tuple(f"{c}_speed" for c in _JOINT_COORDINATES)
    + ("com_x", "com_y", "com_vx", "com_vy")
    + tuple(f"{b}_{axis}" for b in OBS_BODIES for axis in ("x", "y"))
    + ("psoas_l", "psoas_r")
    + ("obstacle_dx", "obstacle_y", "obstacle_r")
)
OBSERVATION_SIZE = len(OBSERVATION_NAMES)
assert OBSERVATION_SIZE == 41 == len(set(OBSERVATION_NAMES))

# Indices that other code reads by meaning.
PELVIS_X = OBSERVATION_NAMES.index("pelvis_tx")
PELVIS_Y = OBSERVATION_NAMES.index("pelvis_ty")


def pad_obstacles(obstacles: np.ndarray, slots: int = MAX_OBSTACLE_SLOTS) -> np.ndarray:
    """Pad (n, 3) obstacle rows (x, y, r) to (slots, 3); padding is never ahead."""
    obstacles = np.asarray(obstacles, dtype=np.float64).reshape(-1, 3)
    if not 1 <= slots <= MAX_OBSTACLE_SLOTS:
        raise ValueError(f"slots must be in [1, {MAX_OBSTACLE_SLOTS}], got {slots}")
    if obstacles.shape[0] > slots:
        raise ValueError(
            f"at most {slots} obstacles fit the padded layout, got {obstacles.shape[0]}"
        )
    padded = np.zeros((slots, 3))
    padded[:, 0] = PADDING_X_M
    padded[: obstacles.shape[0]] = obstacles
    return padded


def obstacle_slots(max_obstacles: int) -> int:
    """Rows of a padded obstacle array that hold every course of at most `max_obstacles`
    obstacles (at least one row)."""
    return min(max(int(max_obstacles), 1), MAX_OBSTACLE_SLOTS)


def next_obstacle(obstacles: Any, pelvis_x: Any, xp: Any = np) -> Any:
    """The first obstacle (smallest x) with x + r >= pelvis_x, as (x − pelvis_x, y, r) in m.

    `obstacles` is (K, 3) rows (x, y, r), ground frame; NO_OBSTACLE when none is ahead.
    An obstacle stays "ahead" until the pelvis has passed its far edge (osim-rl 1.5's rule).
    """
    obstacles = xp.asarray(obstacles)
    none = xp.asarray(NO_OBSTACLE, dtype=obstacles.dtype)
    if obstacles.shape[0] == 0:
        return none
    x, r = obstacles[:, 0], obstacles[:, 2]
    ahead = x + r >= pelvis_x
    # Smallest x among the obstacles ahead; rows behind get +inf so argmin skips them.
    index = xp.argmin(xp.where(ahead, x, xp.inf))
    row = obstacles[index]
    found = xp.stack([row[0] - pelvis_x, row[1], row[2]])
    return xp.where(xp.any(ahead), found, none)


def assemble(
    q: Any,
    u: Any,
    com_pos: Any,
    com_vel: Any,
    body_xy: Any,
    psoas_lr: Any,
    obstacles: Any,
    xp: Any = np,
) -> Any:
    """The 41 observation values in the seed's order (see the module table).

    q, u: (9,) coordinates and speeds in `l2run.model.names.COORDINATES` order (rad, m, rad/s,
    m/s); com_pos, com_vel: (2,) x, y (m, m/s, ground); body_xy: (7, 2) origins of OBS_BODIES
    (m, ground); psoas_lr: (2,) left, right; obstacles: (K, 3) rows (x, y, r).
    """
    q = xp.asarray(q)
    u = xp.asarray(u)
    return xp.concatenate(
        [
            q[0:3],
            u[0:3],
            q[3:9],
            u[3:9],
            xp.asarray(com_pos)[0:2],
            xp.asarray(com_vel)[0:2],
            xp.reshape(xp.asarray(body_xy), (-1,)),
            xp.asarray(psoas_lr),
            next_obstacle(obstacles, q[1], xp=xp),
        ]
    )


def ligament_penalty(lig_forces: Any, xp: Any = np) -> Any:
    """osim-rl 1.5's ligament penalty: 1e-7 · sqrt(Σ f²) over the 6 CoordinateLimitForces."""
    lig_forces = xp.asarray(lig_forces)
    squares = (lig_forces * lig_forces).sum()
    if xp is np:  # RunEnv's every step: a Python float, without numpy's scalar ufuncs
        return LIGAMENT_PENALTY_WEIGHT * math.sqrt(float(squares))
    return LIGAMENT_PENALTY_WEIGHT * xp.sqrt(squares)
