"""`l2run/Run-v0` as a gymnasium vector env: N runners stepped in ONE jitted JAX call.

    envs = gymnasium.make_vec("l2run/Run-v0", num_envs=N, engine="jax", difficulty=2)
    obs, info = envs.reset(seed=0)                # env i seeded with 0 + i, as SyncVectorEnv
    obs, reward, terminated, truncated, info = envs.step(actions)   # actions (N, 18)

| array       | shape    | dtype              | meaning                                       |
|-------------|----------|--------------------|-----------------------------------------------|
| actions     | (N, 18)  | float32 (any real) | excitations, clipped to [0, 1], MUSCLES order |
| obs         | (N, 41)  | float64 (float32¹) | `l2run.observation.OBSERVATION_NAMES`         |
| reward      | (N,)     | float64            | Δ pelvis x − ligament penalty (−500: failure) |
| terminated  | (N,)     | bool               | pelvis y < 0.65 m, or the integrator failed   |
| truncated   | (N,)     | bool               | `max_episode_steps` (1000) steps, no fall     |

¹ with ``dtype="float32"`` the engine computes, and returns observations, in float32.

**Autoreset: gymnasium's SAME_STEP mode** (`metadata["autoreset_mode"]`). In the step where an
episode ends (terminated or truncated), that runner is reset inside the same jitted call: `obs`
holds the first observation of its next episode, and `info["final_obs"]` (object array, entries
for the ended runners, mask `info["_final_obs"]`) the last observation of the episode that ended;
`info["final_info"]` that step's info (its reward terms, or the integrator failure's
`error`) and `info["course"]` the new course; the top level's `reward_terms` are those of the
runners that go on (their masks are False for the ended ones). The results are those, to
round-off (the batched program may round differently from a single runner's), of
``SyncVectorEnv([RunGymEnv(engine="jax") via gymnasium.make] * N,
autoreset_mode=SAME_STEP)``, but for the single env's `info["state"]` (every body pose, foot
force, activation and fibre length: a host transfer of the whole batch each step, left out;
`RunEnv` gives it): each runner owns a `numpy.random.RandomState`; ``reset(seed=s)``
seeds runner i with s + i (a list gives one seed per runner), ``reset()`` continues each stream;
each (auto)reset draws the next course with `l2run.course.generate_course` at the constructor's
difficulty (``reset(options={"difficulty": d})`` applies d to that reset only, as the single env
does). So runner i seeded s reproduces ``gymnasium.make("l2run/Run-v0", engine="jax")`` reset
with seed s, step for step, including its later episodes.

How the courses stay on the host while the reset happens on the device: each runner's *next*
course is drawn ahead of time from a copy of its RandomState and passed into the jitted step; a
runner that ended adopts that copy (so its stream advances exactly as the single env's would) and
draws the following one. Only runners that ended cost host work (and a re-upload of the next
starting states, which otherwise stay on the device).

The first step of every episode uses the first-step scheme of the integrator
(`step.first_step_integrator`, as the single env does); only the runners that just reset pay
for it (`rollout.batch_step`).
`integrator=` / `first_integrator=` choose other schemes ("rk4:20", a tuple or an `Integrator`;
``first_integrator=None`` uses `integrator` for every step).

`engine="opensim"` gives a `SyncVectorEnv` of OpenSim envs with the same autoreset mode
(`RunSyncVectorEnv`: it checks the whole batch's seeds and actions before any runner moves).
"""

from __future__ import annotations

import copy
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode
from gymnasium.vector.utils import batch_space

from l2run.course import (
    Course,
    check_difficulty,
    check_engine_obstacle_physics,
    check_max_obstacles,
    generate_course,
)
from l2run.engines.base import float_dtype_name
from l2run.env.runenv import (
    INTEGRATOR_FAILURE_REWARD,
    MAX_SEED,
    N_ACTIONS,
    TIMESTEP_LIMIT,
    check_seed,
    real_array,
)
from l2run.observation import OBSERVATION_SIZE, PELVIS_X, obstacle_slots

DTYPES = {"float64": np.float64, "float32": np.float32}


def _check_num_envs(num_envs: Any) -> int:
    if isinstance(num_envs, bool) or not isinstance(num_envs, int | np.integer) or num_envs < 1:
        raise ValueError(f"num_envs must be a positive int, got {num_envs!r}")
    return int(num_envs)


def make_vector_env(
    num_envs: int = 1, engine: str = "opensim", **kwargs: Any
) -> gym.vector.VectorEnv:
    """The `vector_entry_point` of l2run/Run-v0: `RunVectorEnv` for engine="jax", else a
    `SyncVectorEnv` of single envs (same-step autoreset)."""
    num_envs = _check_num_envs(num_envs)
    if engine == "jax":
        return RunVectorEnv(num_envs=num_envs, **kwargs)
    from l2run.engines import ENGINE_NAMES

    if engine not in ENGINE_NAMES:
        raise ValueError(f"engine must be one of {ENGINE_NAMES}, got {engine!r}")
    max_steps = kwargs.pop("max_episode_steps", TIMESTEP_LIMIT)

    def make_one() -> gym.Env:
        return gym.make("l2run/Run-v0", engine=engine, max_episode_steps=max_steps, **kwargs)

    return RunSyncVectorEnv([make_one] * num_envs, autoreset_mode=AutoresetMode.SAME_STEP)


def check_vector_seed(seed: Any, num_envs: int) -> list[int | None]:
    """One seed per runner from ``reset(seed=...)``: None, an int s (runner i gets s + i, all
    within `MAX_SEED`) or a list of num_envs seeds."""
    if seed is None:
        return [None] * num_envs
    if isinstance(seed, int | np.integer) and not isinstance(seed, bool):
        if not 0 <= seed <= MAX_SEED - (num_envs - 1):
            raise ValueError(
                f"seed must be in [0, {MAX_SEED - num_envs + 1}] (runner i gets "
                f"seed + i), got {seed!r}"
            )
        return [int(seed) + i for i in range(num_envs)]
    try:
        if isinstance(seed, str | bytes):
            raise TypeError("a string is not a list of seeds")
        seeds = list(seed)
    except TypeError:
        raise ValueError(
            f"seed must be None, an int or a list of num_envs={num_envs} ints, got {seed!r}"
        ) from None
    if len(seeds) != num_envs:
        raise ValueError(f"seed list must have num_envs={num_envs} entries")
    return [check_seed(s) for s in seeds]


def check_vector_actions(actions: Any, num_envs: int) -> np.ndarray:
    """`actions` as a float64 (num_envs, 18) array, refused unless real and finite."""
    array = real_array(actions, f"actions (shape ({num_envs}, {N_ACTIONS}))")
    if array.shape != (num_envs, N_ACTIONS):
        raise ValueError(f"actions must have shape ({num_envs}, {N_ACTIONS}), got {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError("actions contain NaN or inf; excitations must be finite, in [0, 1]")
    return array


class RunSyncVectorEnv(gym.vector.SyncVectorEnv):
    """gymnasium's `SyncVectorEnv` of single envs (engine="opensim"), which checks a whole
    batch's seeds and actions before any runner moves: the plain one steps and resets runner
    by runner, so a bad row i (a NaN, a seed past 2**32 − 1) raised after runners 0 … i−1
    had already moved."""

    def reset(
        self, *, seed: Any = None, options: dict[str, Any] | None = None
    ) -> tuple[Any, dict[str, Any]]:
        check_vector_seed(seed, self.num_envs)
        return super().reset(seed=seed, options=options)

    def step(self, actions: Any) -> tuple[Any, Any, Any, Any, dict[str, Any]]:
        check_vector_actions(actions, self.num_envs)
        return super().step(actions)


class RunVectorEnv(gym.vector.VectorEnv):
    """N runners on the JAX engine, stepped in one jitted call (see the module docstring)."""

    metadata = {"autoreset_mode": AutoresetMode.SAME_STEP, "render_modes": []}

    def __init__(
        self,
        num_envs: int,
        max_obstacles: int = 3,
        difficulty: int = 2,
        max_episode_steps: int = TIMESTEP_LIMIT,
        integrator: Any = None,
        dtype: str = "float64",
        render_mode: str | None = None,
        first_integrator: Any = "default",
        obstacle_physics: str = "reported",
    ) -> None:
        from l2run.engines.jax import rollout
        from l2run.engines.jax import step as env_step
        from l2run.engines.jax.params import load_params

        self.num_envs = _check_num_envs(num_envs)
        self.max_obstacles = check_max_obstacles(max_obstacles)
        self.difficulty = check_difficulty(difficulty)
        # accepted for the single env's signature; its other value needs the OpenSim engine
        check_engine_obstacle_physics(obstacle_physics, "jax")
        if (
            isinstance(max_episode_steps, bool)
            or not isinstance(max_episode_steps, int | np.integer)
            or max_episode_steps < 1
        ):
            raise ValueError(f"max_episode_steps must be a positive int, got {max_episode_steps!r}")
        self.max_episode_steps = int(max_episode_steps)
        dtype = float_dtype_name(dtype)
        if render_mode is not None:
            raise ValueError("the vector env does not render; use the single env to watch a run")
        self.render_mode = None
        self.dtype = DTYPES[dtype]
        self.integrator = env_step.parse_integrator(integrator)
        # The scheme of each episode's first step (the engine's stiff-transient scheme by
        # default, as the single env uses; None: `integrator` for every step).
        self.first_integrator = (
            env_step.first_step_integrator(self.integrator)
            if first_integrator == "default"
            else None
            if first_integrator is None
            else env_step.parse_integrator(first_integrator)
        )

        self.single_action_space = gym.spaces.Box(0.0, 1.0, (N_ACTIONS,), np.float32)
        self.single_observation_space = gym.spaces.Box(
            -np.inf, np.inf, (OBSERVATION_SIZE,), self.dtype
        )
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)

        self._rollout = rollout
        # the courses' obstacles fit this many padded rows (fewer rows, less contact work)
        self._slots = obstacle_slots(self.max_obstacles)
        self._params = rollout.cast_floats(load_params(), self.dtype)
        self._rngs = [np.random.RandomState() for _ in range(self.num_envs)]
        # Per runner: the next episode's course, drawn from `_next_rngs[i]` (a copy of
        # `_rngs[i]` advanced by that draw), and its padded arrays.
        self._next_rngs: list[np.random.RandomState] = [None] * self.num_envs  # type: ignore[list-item]
        self._next_courses: list[Course] = [Course()] * self.num_envs
        self._next_obstacles, self._next_psoas = rollout.course_arrays(
            self._next_courses, self._slots
        )
        self._next_dirty = True  # device copy of the next courses is stale
        self.courses: list[Course] = [Course()] * self.num_envs
        self._state: Any = None
        self._obs: np.ndarray | None = None
        self._closed = False

    # --- host side ----------------------------------------------------------------------

    def _draw_next(self, i: int) -> None:
        """Draw runner i's next course from a copy of its stream (the stream itself stays)."""
        rng = copy.deepcopy(self._rngs[i])
        course = generate_course(rng, self.difficulty, self.max_obstacles)
        self._next_rngs[i], self._next_courses[i] = rng, course
        obstacles, psoas = self._rollout.course_arrays([course], self._slots)
        self._next_obstacles[i], self._next_psoas[i] = obstacles[0], psoas[0]
        self._next_dirty = True

    def reset(
        self, *, seed: Any = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Reset all runners (or those in ``options["reset_mask"]``); see the module docstring."""
        if self._closed:
            raise RuntimeError("this vector env is closed; make a new one")
        options = dict(options or {})
        mask = options.pop("reset_mask", None)
        unknown = set(options) - {"difficulty"}
        if unknown:
            raise ValueError(
                f"unknown reset options {sorted(unknown)}; expected 'difficulty', 'reset_mask'"
            )
        difficulty = check_difficulty(options.get("difficulty", self.difficulty))
        if mask is None:
            mask = np.ones(self.num_envs, dtype=bool)
        else:
            mask = np.asarray(mask)
            if mask.shape != (self.num_envs,) or mask.dtype != np.bool_ or not mask.any():
                raise ValueError(
                    f"options['reset_mask'] must be a bool array of shape ({self.num_envs},) "
                    "with at least one True"
                )
            if self._state is None:
                raise RuntimeError("call reset() without reset_mask first")
        seeds = check_vector_seed(seed, self.num_envs)
        if seed is not None:
            super().reset(seed=seeds[0])  # gymnasium's own np_random, unused by the runners

        courses = list(self.courses)
        for i in np.flatnonzero(mask):
            if seeds[i] is not None:
                self._rngs[i].seed(seeds[i])
            courses[i] = generate_course(
                self._rngs[i], difficulty, self.max_obstacles, seed=seeds[i]
            )
            self._draw_next(i)
        obstacles, psoas = self._rollout.course_arrays(courses, self._slots)
        fresh = self._rollout.batch_reset(self._params, obstacles, psoas)
        if self._state is None:
            self._state = fresh
        else:
            self._state = self._rollout._select(mask, fresh, self._state)
        self.courses = courses
        self._obs = np.asarray(self._rollout.batch_observe(self._params, self._state))
        info = {"course": _objects(courses, mask), "_course": mask.copy()}
        return self._obs.copy(), info

    def _check_actions(self, actions: Any) -> np.ndarray:
        array = check_vector_actions(actions, self.num_envs)
        return np.clip(array, 0.0, 1.0).astype(self.dtype)

    def step(
        self, actions: Any
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """Advance every runner 0.01 s; runners whose episode ends are reset (same step)."""
        if self._closed:
            raise RuntimeError("this vector env is closed; make a new one")
        if self._state is None:
            raise RuntimeError("call reset() before step()")
        action = self._check_actions(actions)
        if self._next_dirty:
            # The runners' next starting states change only when a runner ended: kept on the
            # device between steps.
            self._reset_state = self._rollout.batch_reset(
                self._params,
                np.asarray(self._next_obstacles, self.dtype),
                np.asarray(self._next_psoas, self.dtype),
            )
            self._next_dirty = False
        # The one jitted call: step all runners, and reset those whose episode ended.
        out = self._rollout.autoreset_step(
            self._params,
            self._state,
            action,
            self._reset_state,
            self.integrator,
            self.max_episode_steps,
            self.first_integrator,
        )
        self._state = out.state
        obs = np.asarray(out.obs)
        reward = np.asarray(out.reward, dtype=np.float64)
        terminated = np.asarray(out.terminated, dtype=bool)
        truncated = np.asarray(out.truncated, dtype=bool)
        final_obs = np.asarray(out.final_obs)

        failed = terminated & (reward == INTEGRATOR_FAILURE_REWARD)
        # in float64 as the reward (a float32 run's terms would otherwise mix precisions)
        forward = final_obs[:, PELVIS_X].astype(np.float64) - self._obs[:, PELVIS_X]
        ok = ~failed
        step_info = _reward_info(forward, reward, ok)
        if failed.any():
            step_info["error"] = np.where(failed, "integrator failure (non-finite state)", None)
            step_info["_error"] = failed.copy()

        ended = terminated | truncated
        # As SyncVectorEnv's SAME_STEP mode: a runner whose episode ended reports that step's
        # info in final_info and, at the top level, its reset's (the new course), so the top
        # level's reward terms are those of the runners that go on (none failed: a failure
        # ends), and no terms at all when none goes on (gymnasium adds a key some env gave).
        info: dict[str, Any] = step_info
        if ended.any():
            info = {} if ended.all() else _reward_info(forward, reward, ~ended)
        if ended.any():
            idx = np.flatnonzero(ended)
            final = np.full(self.num_envs, None, dtype=object)
            for i in idx:
                final[i] = final_obs[i].copy()
            info["final_obs"], info["_final_obs"] = final, ended.copy()
            info["final_info"] = _masked(step_info, ended)
            info["_final_info"] = ended.copy()
            for i in idx:
                # The runner continued on its pre-drawn course: adopt the advanced stream.
                self._rngs[i] = self._next_rngs[i]
                self.courses[i] = self._next_courses[i]
                self._draw_next(i)
            info["course"], info["_course"] = _objects(self.courses, ended), ended.copy()
        self._obs = obs
        return obs.copy(), reward, terminated, truncated, info

    def close_extras(self, **kwargs: Any) -> None:
        self._state = None
        self._closed = True


def _reward_info(forward: np.ndarray, reward: np.ndarray, mask: np.ndarray) -> dict[str, Any]:
    """The step's reward terms (float64, (N,)) for the runners in `mask`, 0 elsewhere."""
    return {
        "reward_terms": {
            "forward": np.where(mask, forward, 0.0),
            "_forward": mask.copy(),
            "ligament_penalty": np.where(mask, reward - forward, 0.0),
            "_ligament_penalty": mask.copy(),
        },
        "_reward_terms": mask.copy(),
    }


def _objects(items: list[Any], mask: np.ndarray) -> np.ndarray:
    """Object array (N,) holding items[i] where mask[i], else None."""
    out = np.full(len(items), None, dtype=object)
    for i in np.flatnonzero(mask):
        out[i] = items[i]
    return out


def _masked(info: dict[str, Any], mask: np.ndarray) -> dict[str, Any]:
    """`info` with every `_key` mask restricted to `mask` (the final_info of ended runners)."""
    out: dict[str, Any] = {}
    for key, value in info.items():
        if isinstance(value, dict):
            out[key] = _masked(value, mask)
        elif key.startswith("_"):
            out[key] = value & mask
        else:
            out[key] = value.copy()
    return out
