"""Worker side: a table of RunEnv instances and the operations on them (plain, synchronous).

Both backends run this code: the process pool in its worker processes, the Ray pool in actors.
"""

from __future__ import annotations

import dataclasses
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


# What a served recording must not say about its course: the seed rebuilds it (every
# submission of a round meets the same courses) and the psoas weakness is not observable.
COURSE_SECRETS = ("seed", "psoas")
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
        reward, observation = float(reward), _floats(observation)
        if not all(math.isfinite(v) for v in [reward, *observation]):
            # Nothing a database can store, a score average or JSON carry: the step failed
            # (the grader ends the trial as for an integrator failure) and the env is not reused.
            self.drop(key, reuse=False)
            raise SimulationFailed(f"the step gave a non-finite reward or observation ({reward})")
        return StepOutcome(observation, reward, bool(done), _error_of(info))

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
        from l2run.render.recording import drop_metadata

        if Path(record).exists():  # an episode without a step records nothing
            drop_metadata(record, COURSE_SECRETS)
        return ReplayOutcome(
            outcome.observations, outcome.rewards, outcome.dones, outcome.error, str(record)
        )
    return outcome


def replay_recorded(spec: EpisodeSpec, actions: Actions) -> tuple[ReplayOutcome, bytes | None]:
    """`replay` with a recording, returned as the file's bytes (None: nothing recorded) rather
    than left on this machine's disk: a Ray actor may run on another node than the grader."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="l2run-replay-") as folder:
        path = Path(folder) / "episode.npz"
        outcome = replay(spec, actions, record=path)
        data = path.read_bytes() if path.exists() else None
    return dataclasses.replace(outcome, recording=None), data


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
