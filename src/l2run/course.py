"""The obstacle course and psoas strength of one episode, drawn as osim-rl 1.5 drew them.

osim-rl 1.5 (`RunEnv.generate_env`) drew from numpy's *global* generator; we draw the very same
sequence from a per-environment `numpy.random.RandomState`, so seeding one environment never
disturbs another (or the user's own `np.random`).

Draw order (n = min(3, max_obstacles) when difficulty > 0):

1. xs = U(1, 5, n), ys = U(-0.25, 0.25, n), rs = 0.05 + Exp(0.05, n)
2. only if max_obstacles > 3: k = min(20, max_obstacles) - n extra obstacles,
   xs += 5 + cumsum(U(2, 4, k)), ys += U(-0.05, 0.25, k), rs += 0.05 + Exp(0.05, k)
3. y := y * r (the drawn y is a fraction of the radius: most of each sphere is underground)
4. difficulty >= 2: right psoas = max(0.5, 1 - N(0, 0.1)), then left likewise
5. obstacles sorted (lexicographically on (x, y, r), as Python sorted the tuples)
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

DIFFICULTIES = (0, 1, 2)
# Obstacles of the first round: uniform x in [1, 5) m, y fraction in [-0.25, 0.25).
FIRST_ROUND_OBSTACLES = 3
FIRST_X_RANGE_M = (1.0, 5.0)
FIRST_Y_FRACTION_RANGE = (-0.25, 0.25)
# Extra obstacles of the second round (max_obstacles=10): gaps of U(2, 4) m beyond x = 5 m.
MAX_OBSTACLES_CAP = 20
EXTRA_X_OFFSET_M = 5.0
EXTRA_GAP_RANGE_M = (2.0, 4.0)
EXTRA_Y_FRACTION_RANGE = (-0.05, 0.25)
# Radii: 5 cm plus an exponential with 5 cm mean.
MIN_RADIUS_M = 0.05
RADIUS_SCALE_M = 0.05
# Psoas strength multiplier: 1 - N(0, 0.1), floored at 0.5.
PSOAS_SD = 0.1
PSOAS_FLOOR = 0.5


@dataclass(frozen=True)
class Course:
    """One episode's surroundings.

    obstacles: (n, 3) rows (x, y, r) of ground-fixed spheres, sorted by x (ground frame, m).
    psoas: (left, right) strength multipliers of iliopsoas_l / iliopsoas_r max isometric force.
    """

    obstacles: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)))
    psoas: tuple[float, float] = (1.0, 1.0)
    difficulty: int = 0
    seed: int | None = None

    def __post_init__(self) -> None:
        obstacles = np.asarray(self.obstacles, dtype=np.float64).reshape(-1, 3)
        obstacles.setflags(write=False)
        object.__setattr__(self, "obstacles", obstacles)
        object.__setattr__(self, "psoas", (float(self.psoas[0]), float(self.psoas[1])))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Course):
            return NotImplemented
        return (
            self.obstacles.shape == other.obstacles.shape
            and bool(np.array_equal(self.obstacles, other.obstacles))
            and self.psoas == other.psoas
            and self.difficulty == other.difficulty
            and self.seed == other.seed
        )

    __hash__ = None  # type: ignore[assignment]  # holds an array: not hashable


def check_difficulty(difficulty: object) -> int:
    """Return `difficulty` as an int in {0, 1, 2}, else raise ValueError."""
    if isinstance(difficulty, bool) or not isinstance(difficulty, int | np.integer):
        raise ValueError(f"difficulty must be one of {DIFFICULTIES}, got {difficulty!r}")
    if int(difficulty) not in DIFFICULTIES:
        raise ValueError(f"difficulty must be one of {DIFFICULTIES}, got {difficulty!r}")
    return int(difficulty)


def check_max_obstacles(max_obstacles: object) -> int:
    """Return `max_obstacles` as a non-negative int, else raise ValueError."""
    if isinstance(max_obstacles, bool) or not isinstance(max_obstacles, int | np.integer):
        raise ValueError(f"max_obstacles must be a non-negative int, got {max_obstacles!r}")
    if max_obstacles < 0:
        raise ValueError(f"max_obstacles must be a non-negative int, got {max_obstacles!r}")
    return int(max_obstacles)


def generate_course(
    rng: np.random.RandomState, difficulty: int, max_obstacles: int, seed: int | None = None
) -> Course:
    """Draw a course from `rng` in osim-rl 1.5's order (see the module docstring).

    `seed` is only recorded in the returned Course; seeding `rng` is the caller's job.
    """
    difficulty = check_difficulty(difficulty)
    max_obstacles = check_max_obstacles(max_obstacles)

    xs = np.zeros(0)
    ys = np.zeros(0)
    rs = np.zeros(0)
    if difficulty > 0:
        n = min(FIRST_ROUND_OBSTACLES, max_obstacles)
        xs = rng.uniform(*FIRST_X_RANGE_M, n)
        ys = rng.uniform(*FIRST_Y_FRACTION_RANGE, n)
        rs = MIN_RADIUS_M + rng.exponential(RADIUS_SCALE_M, n)
        if max_obstacles > FIRST_ROUND_OBSTACLES:
            k = max(min(MAX_OBSTACLES_CAP, max_obstacles) - n, 0)
            xs = np.concatenate(
                [xs, np.cumsum(rng.uniform(*EXTRA_GAP_RANGE_M, k)) + EXTRA_X_OFFSET_M]
            )
            ys = np.concatenate([ys, rng.uniform(*EXTRA_Y_FRACTION_RANGE, k)])
            rs = np.concatenate([rs, MIN_RADIUS_M + rng.exponential(RADIUS_SCALE_M, k)])
    ys = ys * rs

    right = left = 1.0
    if difficulty >= 2:
        right = max(PSOAS_FLOOR, 1.0 - rng.normal(0.0, PSOAS_SD))
        left = max(PSOAS_FLOOR, 1.0 - rng.normal(0.0, PSOAS_SD))

    rows = sorted(zip(xs.tolist(), ys.tolist(), rs.tolist(), strict=True))
    obstacles = np.array(rows, dtype=np.float64).reshape(-1, 3)
    return Course(obstacles=obstacles, psoas=(left, right), difficulty=difficulty, seed=seed)
