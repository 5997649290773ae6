"""Worker side: a table of RunEnv instances and the operations on them (plain, synchronous).

Both backends run this code: the process pool in its worker processes, the Ray pool in actors.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from l2run.grader.services.pool.base import (
    Actions,
    BadAction,
    EnvMissing,
    EpisodeSpec,
    ReplayOutcome,
    SimulationFailed,
    StepOutcome,
)


def make_env(engine: str, max_obstacles: int, record: Path | None = None) -> Any:
    """The participant-facing environment, exactly as the seed defines it."""
    from l2run.env.runenv import RunEnv

    kwargs: dict[str, Any] = {"visualize": False, "max_obstacles": max_obstacles, "engine": engine}
    if record is not None:
        kwargs["record"] = str(record)
    return RunEnv(**kwargs)


def _floats(values) -> list[float]:
    return [float(v) for v in values]


def _error_of(info: Any) -> str | None:
    if isinstance(info, dict) and info.get("error"):
        return str(info["error"])
    return None


MAX_SPARE_ENVS = 4  # per (engine, max_obstacles): built environments kept for the next instance


class EnvTable:
    """Environments by key, each remembering the spec it was built for.

    Building an OpenSim RunEnv costs far more than a reset, so environments of finished instances
    are kept (a few) and handed to new ones; `reset(seed=...)` starts them from the model's
    default state on the new course, exactly like a fresh one.
    """

    def __init__(self) -> None:
        self._envs: dict[str, tuple[Any, tuple[str, int]]] = {}
        self._spare: dict[tuple[str, int], list[Any]] = {}

    def __len__(self) -> int:
        return len(self._envs)

    def _env_for(self, key: str, spec: EpisodeSpec) -> Any:
        build = (spec.engine, spec.max_obstacles)
        held = self._envs.get(key)
        if held is not None and held[1] == build:
            return held[0]
        self.drop(key)
        spares = self._spare.get(build)
        env = spares.pop() if spares else make_env(spec.engine, spec.max_obstacles)
        self._envs[key] = (env, build)
        return env

    def reset(self, key: str, spec: EpisodeSpec) -> list[float]:
        env = self._env_for(key, spec)
        return _floats(env.reset(difficulty=spec.difficulty, seed=spec.seed))

    def step(self, key: str, action: list[float]) -> StepOutcome:
        held = self._envs.get(key)
        if held is None:
            raise EnvMissing(key)
        try:
            observation, reward, done, info = held[0].step(action)
        except ValueError as exc:
            raise BadAction(str(exc)) from None
        except Exception as exc:  # the env is in an unknown state: never reuse it
            self.drop(key, reuse=False)
            raise SimulationFailed(f"{type(exc).__name__}: {exc}") from None
        reward = float(reward)
        error = _error_of(info)
        if not math.isfinite(reward):
            error = error or f"non-finite reward {reward}"
        return StepOutcome(_floats(observation), reward, bool(done), error)

    def restore(self, key: str, spec: EpisodeSpec, actions: Actions) -> ReplayOutcome:
        env = self._env_for(key, spec)
        return _run(env, spec, actions)

    def drop(self, key: str, reuse: bool = True) -> None:
        held = self._envs.pop(key, None)
        if held is None:
            return
        env, build = held
        spares = self._spare.setdefault(build, [])
        if reuse and len(spares) < MAX_SPARE_ENVS:
            spares.append(env)
        elif hasattr(env, "close"):
            try:
                env.close()
            except Exception:  # closing is best effort
                pass


def replay(spec: EpisodeSpec, actions: Actions, record: Path | None = None) -> ReplayOutcome:
    """Re-simulate in a fresh environment; with `record`, the env writes its recording there."""
    env = make_env(spec.engine, spec.max_obstacles, record=record)
    try:
        outcome = _run(env, spec, actions)
    finally:
        if hasattr(env, "close"):
            env.close()
    if record is not None:
        return ReplayOutcome(
            outcome.observations, outcome.rewards, outcome.dones, outcome.error, str(record)
        )
    return outcome


def _run(env: Any, spec: EpisodeSpec, actions: Actions) -> ReplayOutcome:
    observations = [_floats(env.reset(difficulty=spec.difficulty, seed=spec.seed))]
    rewards: list[float] = []
    dones: list[bool] = []
    error = None
    for action in actions:
        observation, reward, done, info = env.step(action)
        observations.append(_floats(observation))
        rewards.append(float(reward))
        dones.append(bool(done))
        error = _error_of(info)
        if done:
            break
    return ReplayOutcome(observations, rewards, dones, error)
