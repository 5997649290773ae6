"""What the grader needs from a simulation backend, and the values that cross it."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

Actions = list[list[float]]  # one 18-float action per step, in order


@dataclass(frozen=True)
class EpisodeSpec:
    """Everything that determines an episode besides the actions."""

    engine: str
    max_obstacles: int
    difficulty: int
    seed: int


@dataclass(frozen=True)
class StepOutcome:
    observation: list[float]
    reward: float
    done: bool
    error: str | None  # the env's info["error"] (integrator failure), else None


@dataclass(frozen=True)
class ReplayOutcome:
    """A re-simulation: observations[0] is the reset observation, then one per action."""

    observations: Actions
    rewards: list[float]
    dones: list[bool]
    error: str | None
    recording: str | None = None  # path of the written recording, if one was asked for


class EnvMissing(Exception):
    """No environment for this key here (server restarted, or its worker was restarted)."""


class BadAction(ValueError):
    """The environment refused the action (its ValueError); nothing was simulated."""


class SimulationFailed(Exception):
    """The environment raised something unexpected, or a step ran past its time limit."""


class SimulationPool(ABC):
    """Keyed environments. Calls for one key must not overlap (the grader locks per key)."""

    @abstractmethod
    async def start(self) -> None: ...

    @abstractmethod
    async def stop(self) -> None: ...

    @abstractmethod
    async def reset(self, key: str, spec: EpisodeSpec) -> list[float]:
        """(Re)start `key`'s environment on a new course; the reset observation."""

    @abstractmethod
    async def step(self, key: str, action: list[float], timeout_s: float) -> StepOutcome:
        """One 0.01 s step; raises EnvMissing, BadAction or SimulationFailed."""

    @abstractmethod
    async def restore(self, key: str, spec: EpisodeSpec, actions: Actions) -> ReplayOutcome:
        """Rebuild `key`'s environment by resetting and replaying `actions`."""

    @abstractmethod
    async def replay(
        self, spec: EpisodeSpec, actions: Actions, record: Path | None = None
    ) -> ReplayOutcome:
        """Re-simulate in a scratch environment (kept nowhere), optionally recording it."""

    @abstractmethod
    async def drop(self, key: str) -> None:
        """Forget `key`'s environment (no error if there is none)."""
