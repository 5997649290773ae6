"""Optional Ray backend: environments live in Ray actors, so one grader can spread simulation
over a cluster (`--pool ray`, `L2RUN_GRADER_RAY_ADDRESS`). Install with `pip install l2run[ray]`.

Same contract as the process pool: a key stays on the actor that built its environment; a dead
actor is replaced and its environments are rebuilt by replay when their owners next call.
Replays (anyone may ask for one) run on an actor of their own: an actor runs its calls one after
another, and a step's time limit would otherwise run out while it waited behind a replay.
Calls that do share an actor (a step behind another key's restore) are timed, as the process
pool's are, from when the actor starts them.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
from pathlib import Path
from typing import Any

from l2run.atomic_files import write_bytes_atomically
from l2run.grader.services.pool import simulation
from l2run.grader.services.pool.base import (
    Actions,
    BadAction,
    EnvMissing,
    EpisodeSpec,
    ReplayOutcome,
    SimulationFailed,
    SimulationPool,
    StepOutcome,
)

log = logging.getLogger(__name__)
CPUS_PER_ACTOR = 1  # one OpenSim integration at a time per actor


class EnvActor:
    """Runs inside a Ray worker: an EnvTable and its operations."""

    def __init__(self) -> None:
        try:
            import opensim

            opensim.Logger.setLevelString("error")
        except Exception:  # the JAX engine needs no OpenSim
            pass
        self.table = simulation.EnvTable()

    def reset(self, key: str, spec: EpisodeSpec) -> list[float]:
        return self.table.reset(key, spec)

    def step(self, key: str, action: list[float]) -> StepOutcome:
        return self.table.step(key, action)

    def restore(self, key: str, spec: EpisodeSpec, actions: Actions) -> ReplayOutcome:
        return self.table.restore(key, spec, actions)

    def replay(self, spec: EpisodeSpec, actions: Actions) -> ReplayOutcome:
        return simulation.replay(spec, actions)

    def replay_recorded(
        self, spec: EpisodeSpec, actions: Actions
    ) -> tuple[ReplayOutcome, bytes | None]:
        return simulation.replay_recorded(spec, actions)

    def drop(self, key: str) -> None:
        self.table.drop(key)

    def size(self) -> int:
        return len(self.table)


class RayPool(SimulationPool):
    def __init__(self, size: int, address: str | None = None) -> None:
        self.size = size
        self.address = address
        self._actors: list[Any] = []
        self._keys: list[set[str]] = []
        self._home: dict[str, int] = {}
        # actor index (None: the replay actor) -> the result of the last call sent to it
        self._tails: dict[int | None, asyncio.Future] = {}
        self._started_ray = False

    async def start(self) -> None:
        import ray

        if not ray.is_initialized():
            kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
            if self.address:
                kwargs["address"] = self.address
            else:
                kwargs["num_cpus"] = max(self.size * CPUS_PER_ACTOR, os.cpu_count() or 1)
            await asyncio.to_thread(ray.init, **kwargs)
            self._started_ray = True
        self._remote = ray.remote(num_cpus=CPUS_PER_ACTOR, max_restarts=0)(EnvActor)
        self._actors = [self._remote.remote() for _ in range(self.size)]
        self._keys = [set() for _ in range(self.size)]
        self._replayer = self._replay_actor()

    async def stop(self) -> None:
        import ray

        for actor in [*self._actors, self._replayer]:
            ray.kill(actor)
        self._actors, self._keys = [], []
        self._tails.clear()
        self._home.clear()
        if self._started_ray:
            await asyncio.to_thread(ray.shutdown)
            self._started_ray = False

    def _replace(self, index: int) -> None:
        import ray

        log.warning("simulation actor %d lost; starting a new one", index)
        try:
            ray.kill(self._actors[index])
        except Exception:  # already gone
            pass
        for key in self._keys[index]:
            self._home.pop(key, None)
        self._keys[index] = set()
        self._actors[index] = self._remote.remote()
        self._tails.pop(index, None)

    def _replay_actor(self) -> Any:
        """The replay actor: it reserves no CPU, so the pool's own actors are scheduled on the
        CPUs Ray was given (replays are rare, and only one runs at a time)."""
        return self._remote.options(num_cpus=0).remote()

    def _replace_replayer(self) -> None:
        import ray

        log.warning("replay actor lost; starting a new one")
        try:
            ray.kill(self._replayer)
        except Exception:  # already gone
            pass
        self._replayer = self._replay_actor()
        self._tails.pop(None, None)

    async def _call(
        self, index: int | None, method: str, *args: Any, timeout_s: float | None = None
    ):
        """`method` on actor `index` (None: the replay actor)."""
        from ray.exceptions import RayActorError, RayTaskError

        actor = self._replayer if index is None else self._actors[index]
        replace = self._replace_replayer if index is None else lambda: self._replace(index)
        ref = getattr(actor, method).remote(*args)
        result = asyncio.wrap_future(ref.future())
        ahead, self._tails[index] = self._tails.get(index), result
        try:
            if timeout_s is not None and ahead is not None:
                # An actor runs one caller's calls in the order sent, so this one starts when
                # the one sent before it ends: time queued behind another key's restore (a
                # replay of its whole episode) is not this call's (as in the process pool).
                await asyncio.wait([ahead])
            # shielded: a caller that gives up does not end the call its successors wait on
            return await asyncio.wait_for(asyncio.shield(result), timeout_s)
        except TimeoutError:
            replace()  # killing the actor is the only way to stop a stuck step
            raise SimulationFailed(f"{method} took longer than the {timeout_s:g} s limit") from None
        except RayActorError:
            replace()
            raise EnvMissing(f"actor {'replay' if index is None else index} died") from None
        except RayTaskError as exc:
            cause = exc.cause if getattr(exc, "cause", None) is not None else exc
            if isinstance(cause, EnvMissing | BadAction | SimulationFailed):
                raise cause from None
            raise SimulationFailed(f"{type(cause).__name__}: {cause}") from None

    def _place(self, key: str) -> int:
        if key in self._home:
            return self._home[key]
        index = min(range(self.size), key=lambda i: len(self._keys[i]))
        self._keys[index].add(key)
        self._home[key] = index
        return index

    def _existing(self, key: str) -> int:
        if key not in self._home:
            raise EnvMissing(key)
        return self._home[key]

    async def reset(self, key: str, spec: EpisodeSpec) -> list[float]:
        return await self._call(self._place(key), "reset", key, spec)

    async def step(self, key: str, action: list[float], timeout_s: float) -> StepOutcome:
        return await self._call(self._existing(key), "step", key, action, timeout_s=timeout_s)

    async def restore(self, key: str, spec: EpisodeSpec, actions: Actions) -> ReplayOutcome:
        return await self._call(self._place(key), "restore", key, spec, actions)

    async def replay(
        self, spec: EpisodeSpec, actions: Actions, record: Path | None = None
    ) -> ReplayOutcome:
        if record is None:
            return await self._call(None, "replay", spec, actions)
        # The actor may run on another node: the recording comes back as bytes and is
        # written here, where the grader serves it from.
        outcome, data = await self._call(None, "replay_recorded", spec, actions)
        if data is None:
            return outcome
        await asyncio.to_thread(write_bytes_atomically, Path(record), data)
        return dataclasses.replace(outcome, recording=str(record))

    async def drop(self, key: str) -> None:
        index = self._home.pop(key, None)
        if index is None:
            return
        self._keys[index].discard(key)
        try:
            await self._call(index, "drop", key)
        except EnvMissing:
            pass

    def actor_of(self, key: str) -> Any:
        """The actor holding `key` (tests kill it to check recovery)."""
        return self._actors[self._existing(key)]
