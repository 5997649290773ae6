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

from dataclasses import dataclass, field, replace

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
# How obstacles are simulated. "reported": at the radius the observation reports, stiffness
# 1e6/r (what the seed describes). "osim-rl-1.5": as osim-rl 1.5 simulated them — it built
# max_obstacles spheres of radius 0.1 m (stiffness 1e6/0.1) once and at each reset set the drawn
# radius and stiffness without rebuilding the system, so they never took effect; the slots a
# course left unused stayed at (0, -0.1), touching the toes (README "Semantics").
OBSTACLE_PHYSICS = ("reported", "osim-rl-1.5")
OSIM_RL_15_OBSTACLE_RADIUS_M = 0.1
OSIM_RL_15_UNUSED_SLOT_XY_M = (0.0, -0.1)


@dataclass(frozen=True)
class Course:
    """One episode's surroundings.

    obstacles: (n, 3) rows (x, y, r) of ground-fixed spheres, sorted by x (ground frame, m):
    what the observation reports.
    psoas: (left, right) strength multipliers of iliopsoas_l / iliopsoas_r max isometric force.
    contact_obstacles: (k, 3) rows the physics simulates instead of `obstacles` (osim-rl 1.5's
    obstacle physics, `with_obstacle_physics`), or None: the reported rows.
    """

    obstacles: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)))
    psoas: tuple[float, float] = (1.0, 1.0)
    difficulty: int = 0
    seed: int | None = None
    contact_obstacles: np.ndarray | None = None

    def __post_init__(self) -> None:
        obstacles = np.asarray(self.obstacles, dtype=np.float64).reshape(-1, 3)
        obstacles.setflags(write=False)
        object.__setattr__(self, "obstacles", obstacles)
        object.__setattr__(self, "psoas", (float(self.psoas[0]), float(self.psoas[1])))
        if self.contact_obstacles is not None:
            contact = np.asarray(self.contact_obstacles, dtype=np.float64).reshape(-1, 3)
            contact.setflags(write=False)
            object.__setattr__(self, "contact_obstacles", contact)

    @property
    def simulated_obstacles(self) -> np.ndarray:
        """The (k, 3) rows (x, y, r) of the spheres the physics simulates (m, ground frame)."""
        return self.obstacles if self.contact_obstacles is None else self.contact_obstacles

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Course):
            return NotImplemented
        return (
            self.obstacles.shape == other.obstacles.shape
            and bool(np.array_equal(self.obstacles, other.obstacles))
            and self.psoas == other.psoas
            and self.difficulty == other.difficulty
            and self.seed == other.seed
            and _same_rows(self.contact_obstacles, other.contact_obstacles)
        )

    __hash__ = None  # type: ignore[assignment]  # holds an array: not hashable


def _same_rows(a: np.ndarray | None, b: np.ndarray | None) -> bool:
    if a is None or b is None:
        return a is b
    return a.shape == b.shape and bool(np.array_equal(a, b))


def check_obstacle_physics(physics: object, max_obstacles: int = 0) -> str:
    """Return `physics` if it names one of `OBSTACLE_PHYSICS` and takes `max_obstacles` slots,
    else raise ValueError."""
    if not isinstance(physics, str) or physics not in OBSTACLE_PHYSICS:
        raise ValueError(f"obstacle_physics must be one of {OBSTACLE_PHYSICS}, got {physics!r}")
    if physics != "reported" and max_obstacles > MAX_OBSTACLES_CAP:
        # 1.5 built one sphere per slot: beyond the cap they would all sit at one place
        raise ValueError(
            f"osim-rl 1.5's obstacle physics takes max_obstacles <= {MAX_OBSTACLES_CAP} "
            f"(one sphere per slot), got {max_obstacles}"
        )
    return physics


# The JAX engine holds one row per obstacle, both what it reports and what it simulates.
_OPENSIM_ONLY = (
    "obstacle_physics='osim-rl-1.5' runs on the OpenSim engine only (engine='opensim'): "
    "the JAX engine simulates each obstacle at the size the observation reports"
)


def check_engine_obstacle_physics(physics: object, engine: str, max_obstacles: int = 0) -> str:
    """`physics` checked as `check_obstacle_physics` does, and refused with ValueError unless
    `engine` ("opensim" or "jax") simulates it: osim-rl 1.5's needs OpenSim."""
    physics = check_obstacle_physics(physics, max_obstacles)
    if physics != "reported" and engine != "opensim":
        raise ValueError(_OPENSIM_ONLY)
    return physics


def check_reported_obstacles(course: Course) -> None:
    """ValueError for a course whose simulated spheres are not its reported ones (osim-rl
    1.5's obstacle physics), which only the OpenSim engine runs."""
    if course.contact_obstacles is not None:
        raise ValueError(_OPENSIM_ONLY)


def with_obstacle_physics(course: Course, physics: str, max_obstacles: int) -> Course:
    """`course` with the spheres `physics` simulates: "reported" leaves it as it is;
    "osim-rl-1.5" simulates each obstacle at its drawn place as a sphere of 0.1 m (stiffness
    1e7 N/m) and adds one such sphere at (0, -0.1) for each of the `max_obstacles` slots the
    course leaves unused (the observation still reports the drawn radii)."""
    max_obstacles = check_max_obstacles(max_obstacles)
    if check_obstacle_physics(physics, max_obstacles) == "reported":
        return replace(course, contact_obstacles=None)
    n = course.obstacles.shape[0]
    drawn = np.column_stack(
        [course.obstacles[:, :2], np.full(n, OSIM_RL_15_OBSTACLE_RADIUS_M)]
    ).reshape(-1, 3)
    unused = np.tile(
        [*OSIM_RL_15_UNUSED_SLOT_XY_M, OSIM_RL_15_OBSTACLE_RADIUS_M], (max(max_obstacles - n, 0), 1)
    ).reshape(-1, 3)
    return replace(course, contact_obstacles=np.concatenate([drawn, unused]))


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
