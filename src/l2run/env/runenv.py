"""`RunEnv`: the NIPS 2017 "Learning to Run" environment with the seed's (osim-rl 1.5's) API.

    env = RunEnv(visualize=False, max_obstacles=3, engine="opensim")
    observation = env.reset(difficulty=2, seed=None)          # list of 41 floats
    observation, reward, done, info = env.step(action)        # action: 18 excitations

Semantics (the seed's, and osim-rl 1.5's where the seed is silent):

- action: 18 excitations in MUSCLES order, clipped to [0, 1]; NaN/inf or a wrong shape is a
  ValueError and changes nothing.
- one step holds the excitations for 0.01 s; `reset` starts from the model's default state
  (pelvis y 0.91 m, tilt −0.05 rad, zero speeds, default activations and fiber lengths).
- reward = Δ pelvis x (m) − 1e-7 · sqrt(Σ ligament torque²) over the 6 CoordinateLimitForces.
- done when pelvis y < 0.65 m or after 1000 steps (10 s).
- difficulty 0: no obstacles; 1: three obstacles; 2: obstacles and psoas strength
  (`l2run.course.generate_course`, drawn from this environment's own RandomState).
- an integrator failure ends the episode: done=True, reward −500, `info["error"]` says why.

Deliberate difference from osim-rl 1.5: psoas weakness scales `iliopsoas_l`/`iliopsoas_r`;
osim-rl 1.5 scaled `glut_max_l` (muscle index 11) instead of `iliopsoas_l` (index 12) by mistake,
while reporting the drawn value as the left psoas strength.
"""

from __future__ import annotations

import math
import os
import warnings
from typing import Any

import numpy as np

from l2run.course import (
    Course,
    check_difficulty,
    check_engine_obstacle_physics,
    check_max_obstacles,
    generate_course,
    with_obstacle_physics,
)
from l2run.engines import make_engine
from l2run.engines.base import (
    FALL_HEIGHT_M,
    INTEGRATOR_FAILURE_REWARD,
    TIMESTEP_LIMIT,
    IntegratorError,
)
from l2run.model.names import MUSCLES
from l2run.observation import OBSERVATION_SIZE, PELVIS_X, PELVIS_Y, ligament_penalty

N_ACTIONS = len(MUSCLES)
MAX_SEED = 2**32 - 1  # numpy.random.RandomState accepts seeds in [0, 2**32)
# A recording's "ended_by" when the episode was cut short by a reset or close.
UNFINISHED_BY_RESET = "unfinished: a reset or close came first"


def real_array(values: Any, what: str) -> np.ndarray:
    """`values` as a float64 array; ValueError (naming `what`) unless they are real numbers:
    numpy would turn "0.5" or True into a float and drop an imaginary part."""
    try:
        given = np.asarray(values)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{what} must be numbers in [0, 1]: {exc}") from exc
    if given.dtype.kind not in "iuf":
        raise ValueError(
            f"{what} must be real numbers in [0, 1], got values of dtype {given.dtype}"
        )
    return given.astype(np.float64)


def check_action(action: Any) -> np.ndarray:
    """The action as (18,) float64 in [0, 1]; ValueError for a wrong shape, NaN or inf, or
    values that are not real numbers (strings, booleans, complex numbers, objects)."""
    array = real_array(action, f"action ({N_ACTIONS} excitations)")
    if array.shape != (N_ACTIONS,):
        raise ValueError(
            f"action must have shape ({N_ACTIONS},) (one excitation per muscle: "
            f"{', '.join(MUSCLES)}), got shape {array.shape}"
        )
    # min and max carry any NaN; both in [0, 1] (the usual case) needs no clipped copy: a few
    # µs of numpy here cost several times that after each step's compiled program has run
    # (cold caches; benchmarks/RESULTS.md, 2026-12-05 session 42)
    low, high = float(array.min()), float(array.max())
    if not (math.isfinite(low) and math.isfinite(high)):
        raise ValueError("action contains NaN or inf; excitations must be finite, in [0, 1]")
    if low < 0.0 or high > 1.0:
        return np.clip(array, 0.0, 1.0)
    return array


def check_seed(seed: Any, highest: int = MAX_SEED, optional: bool = True) -> int | None:
    """The seed as an int in [0, `highest`] (numpy's RandomState takes [0, 2**32); a trainer
    deriving further seeds from it asks for less), or None when `optional`; ValueError
    otherwise."""
    if seed is None and optional:
        return None
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or not 0 <= seed <= highest:
        allowed = f"{'None or ' if optional else ''}an int in [0, {highest}]"
        raise ValueError(f"seed must be {allowed}, got {seed!r}")
    return int(seed)


def _action_space() -> Any:
    from gymnasium import spaces

    return spaces.Box(low=0.0, high=1.0, shape=(N_ACTIONS,), dtype=np.float32)


def _observation_space() -> Any:
    from gymnasium import spaces

    return spaces.Box(low=-np.inf, high=np.inf, shape=(OBSERVATION_SIZE,), dtype=np.float64)


class RunEnv:
    """The 2017 runner (see the module docstring). `engine` is "opensim" or "jax";
    extra keyword arguments go to the engine (OpenSim: `integrator=`, `accuracy=`).
    `obstacle_physics`: "reported" simulates each obstacle at the size the observation reports
    (the seed's description); "osim-rl-1.5" as osim-rl 1.5 did (0.1 m spheres, the unused slots
    at the toes; `l2run.course.with_obstacle_physics`), on the OpenSim engine only."""

    timestep_limit = TIMESTEP_LIMIT
    ninput = OBSERVATION_SIZE
    noutput = N_ACTIONS

    def __init__(
        self,
        visualize: bool = False,
        max_obstacles: int = 3,
        engine: str = "opensim",
        record: str | os.PathLike[str] | None = None,
        obstacle_physics: str = "reported",
        **engine_options: Any,
    ) -> None:
        self.max_obstacles = check_max_obstacles(max_obstacles)
        # refused here, before an engine is built
        self.obstacle_physics = check_engine_obstacle_physics(
            obstacle_physics, engine, self.max_obstacles
        )
        self.engine = make_engine(engine, **engine_options)
        self.action_space = _action_space()
        self.observation_space = _observation_space()
        self.visualize = bool(visualize)
        self._rng = np.random.RandomState()
        self.course = Course()
        self.istep = 0
        self.last_state: list[float] | None = None
        self.current_state: list[float] | None = None
        self._ended_by_failure = False
        if record is not None:  # a path it cannot write fails here, not when an episode ends
            from l2run.render.recording import check_recording_path

            check_recording_path(record)
        self._record_path = record
        self._recorder: Any = None
        self._episode = -1
        self._viewer: Any = None
        if self.visualize:
            self._viewer = self._open_viewer()

    # --- hooks to the render area ---------------------------------------------------------

    def _open_viewer(self) -> Any:
        """The render area's live window; without a display it warns once and stays headless."""
        from l2run.render.env_view import EnvView

        return EnvView("human")

    def _start_recording(self, seed: int | None, difficulty: int) -> None:
        if self._record_path is None:
            return
        from l2run.render.recording import Recorder, episode_path, later_episode_files

        self._close_recorder()
        if self._episode == 0 and (stale := later_episode_files(self._record_path)):
            # This run numbers its episodes from the start again: say so, once, rather than
            # leave an older run's later episodes silently mixed in with this run's.
            warnings.warn(
                f"{len(stale)} recordings of an earlier run are beside {self._record_path} "
                f"({stale[0].name} … {stale[-1].name}); this run overwrites them as its "
                "episodes go, and leaves those it does not reach",
                stacklevel=3,
            )
        self._recorder = Recorder(
            episode_path(self._record_path, self._episode),
            {
                "engine": self.engine.name,
                "seed": seed,
                "difficulty": difficulty,
                "obstacles": self.course.obstacles,
                "psoas": self.course.psoas,
                "max_obstacles": self.max_obstacles,
                # what the obstacles' contacts were (the rows are the reported ones)
                "obstacle_physics": self.obstacle_physics,
            },
        )
        self._recorder.capture(self.engine)

    def _close_recorder(self, ended_by: str = UNFINISHED_BY_RESET) -> None:
        """Write the episode's recording, noting how the episode ended (metadata "ended_by")."""
        if self._recorder is not None:
            self._recorder.metadata.setdefault("ended_by", ended_by)
            recorder, self._recorder = self._recorder, None
            recorder.close()

    def _show_reset(self) -> None:
        if self._viewer is not None:
            self._viewer.reset(self.engine, self.course.obstacles)

    def _show_step(self, reward: float) -> None:
        if self._viewer is not None:
            self._viewer.step(reward)

    # --- the seed's API -------------------------------------------------------------------

    def reset(self, difficulty: int = 2, seed: int | None = None) -> list[float]:
        """Start an episode; `seed=None` continues this environment's random stream."""
        difficulty = check_difficulty(difficulty)
        seed = check_seed(seed)
        if seed is not None:
            self._rng.seed(seed)
        self.course = with_obstacle_physics(
            generate_course(self._rng, difficulty, self.max_obstacles, seed=seed),
            self.obstacle_physics,
            self.max_obstacles,
        )
        self.engine.reset(self.course)
        self.istep = 0
        self._ended_by_failure = False
        self._episode += 1
        self.last_state = self.current_state = self.get_observation()
        self._start_recording(seed, difficulty)
        self._show_reset()
        # A copy: the reward and the fall test read current_state, which a caller's in-place
        # edit of the returned list must not change.
        return list(self.current_state)

    def get_observation(self) -> list[float]:
        """The 41 observation values (see `l2run.observation`)."""
        return self.engine.observation().tolist()

    def step(self, action: Any) -> tuple[list[float], float, bool, dict[str, Any]]:
        """Advance 0.01 s holding `action` (18 excitations); returns (obs, reward, done, info)."""
        if self.current_state is None:
            raise RuntimeError("call reset() before step()")
        if self._ended_by_failure:
            raise RuntimeError("the episode ended with an integrator failure; call reset()")
        excitations = check_action(action)
        self.last_state = self.current_state
        try:
            self.engine.step(excitations)
        except IntegratorError as exc:
            self._ended_by_failure = True
            info = {"error": f"integrator failure at t={self.istep * 0.01:.2f} s: {exc}"}
            if self._recorder is not None:
                # the failed step: the state kept (the last good one), its reward and action
                self._recorder.capture(
                    self.engine, reward=INTEGRATOR_FAILURE_REWARD, action=excitations
                )
                self._close_recorder(ended_by=info["error"])
            return list(self.last_state), INTEGRATOR_FAILURE_REWARD, True, info
        self.istep += 1
        self.current_state = self.get_observation()
        lig_forces = self.engine.ligament_forces()
        forward = self.current_state[PELVIS_X] - self.last_state[PELVIS_X]
        penalty = float(ligament_penalty(lig_forces))
        reward = forward - penalty
        done = self.is_done()
        info = {
            "reward_terms": {"forward": forward, "ligament_penalty": -penalty},
            "state": self.state_info(lig_forces),
        }
        if self._recorder is not None:
            self._recorder.capture(self.engine, reward=reward, action=excitations)
            if done:
                fell = self.is_pelvis_too_low()
                self._close_recorder(ended_by="fall" if fell else "step limit")
        self._show_step(reward)
        return list(self.current_state), reward, done, info

    def is_pelvis_too_low(self) -> bool:
        return self.current_state is not None and self.current_state[PELVIS_Y] < FALL_HEIGHT_M

    def is_done(self) -> bool:
        return self.is_pelvis_too_low() or self.istep >= TIMESTEP_LIMIT

    def state_info(self, lig_forces: np.ndarray | None = None) -> dict[str, Any]:
        """What 2017 teams had to estimate: bodies, foot forces, muscles, ligaments, time."""
        engine = self.engine
        if lig_forces is None:
            lig_forces = engine.ligament_forces()
        return {
            "time": float(engine.time),
            "body_poses": engine.body_poses(),
            "contact_forces": engine.contact_forces(),
            "activations": engine.activations(),
            "fiber_lengths": engine.fiber_lengths(),
            "ligament_forces": np.asarray(lig_forces, dtype=np.float64),
        }

    def render(self, mode: str = "human", close: bool = False) -> None:
        """osim-rl compatibility: drawing happens in the live viewer (visualize=True)."""
        if close:
            self.close()

    def close(self) -> None:
        self._close_recorder()
        if self._viewer is not None:
            self._viewer.close()
            self._viewer = None

    def __del__(self) -> None:
        # A dropped env still writes its episode's recording (at exit, `recording` does).
        try:
            self._close_recorder(ended_by="unfinished: the environment was dropped mid-episode")
        except Exception:  # noqa: BLE001, S110 - nothing can be reported from a finalizer
            pass

    def seed(self, seed: int | None = None) -> list[int | None]:
        """Old-gym compatibility: seed this environment's course generator."""
        seed = check_seed(seed)
        self._rng.seed(seed)
        return [seed]

    @property
    def distance(self) -> float:
        """Pelvis x (m) now; the episode's distance when it started at x = 0."""
        return math.nan if self.current_state is None else self.current_state[PELVIS_X]
