"""Worker processes (one per core by default), each owning the environments pinned to it.

The event loop never blocks: requests go to a per-worker sender thread, answers come back on a
reader thread and resolve futures the loop awaits. A worker that dies (or is killed because a step
ran past its limit) fails its pending calls with EnvMissing; the grader then rebuilds those
environments elsewhere by replaying their logged actions.

A call's time limit counts from the moment its worker starts it (the worker says so first),
not from when it was queued behind other calls on that worker: a participant's step is not
charged for someone else's replay.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import itertools
import logging
import multiprocessing
import queue
import threading
from pathlib import Path
from typing import Any

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
_ERRORS = {"EnvMissing": EnvMissing, "BadAction": BadAction, "SimulationFailed": SimulationFailed}
_STOP = object()
_STARTED = None  # in place of the ok flag: the worker has begun this request


def worker_main(conn) -> None:
    """Child process: answer (id, op, kwargs) requests until the pipe closes."""
    try:
        import opensim

        opensim.Logger.setLevelString("error")
    except Exception:  # the JAX engine needs no OpenSim
        pass
    table = simulation.EnvTable()
    ops = {
        "reset": table.reset,
        "step": table.step,
        "restore": table.restore,
        "drop": table.drop,
        "replay": simulation.replay,
        "ping": lambda: len(table),
    }
    while True:
        try:
            request_id, op, kwargs = conn.recv()
        except (EOFError, OSError, KeyboardInterrupt):
            return
        if op == "exit":
            return
        try:
            conn.send((request_id, _STARTED, None))
        except (EOFError, OSError, BrokenPipeError):
            return
        try:
            reply = (request_id, True, ops[op](**kwargs))
        except Exception as exc:
            kind = type(exc).__name__ if type(exc).__name__ in _ERRORS else "SimulationFailed"
            message = str(exc) if kind != "SimulationFailed" else f"{type(exc).__name__}: {exc}"
            reply = (request_id, False, (kind, message))
        try:
            conn.send(reply)
        except (EOFError, OSError, BrokenPipeError):
            return


class _Worker:
    def __init__(self, index: int, ctx) -> None:
        self.index = index
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(
            target=worker_main, args=(child,), daemon=True, name=f"l2run-sim-{index}"
        )
        self.process.start()
        child.close()
        self.alive = True
        self.keys: set[str] = set()
        self._ids = itertools.count()
        # request id -> (started, result): `started` resolves when the worker begins it
        self._pending: dict[int, tuple[concurrent.futures.Future, concurrent.futures.Future]] = {}
        self._lock = threading.Lock()
        self._outbox: queue.Queue = queue.Queue()
        threading.Thread(target=self._send_loop, daemon=True).start()
        threading.Thread(target=self._read_loop, daemon=True).start()

    def submit(
        self, op: str, **kwargs: Any
    ) -> tuple[concurrent.futures.Future, concurrent.futures.Future]:
        """(started, result) futures of a request."""
        started: concurrent.futures.Future = concurrent.futures.Future()
        future: concurrent.futures.Future = concurrent.futures.Future()
        with self._lock:
            if not self.alive:
                for f in (started, future):
                    f.set_exception(EnvMissing(f"worker {self.index} is gone"))
                return started, future
            request_id = next(self._ids)
            self._pending[request_id] = (started, future)
        self._outbox.put((request_id, op, kwargs))
        return started, future

    def _send_loop(self) -> None:
        while True:
            item = self._outbox.get()
            if item is _STOP:
                return
            try:
                self.conn.send(item)
            except (OSError, BrokenPipeError, ValueError):
                self._fail_all()
                return

    def _read_loop(self) -> None:
        while True:
            try:
                request_id, ok, payload = self.conn.recv()
            except (EOFError, OSError, TypeError):
                break
            with self._lock:
                if ok is _STARTED:
                    futures = self._pending.get(request_id)
                else:
                    futures = self._pending.pop(request_id, None)
            if futures is None:
                continue
            started, future = futures
            if not started.done():
                started.set_result(None)
            if ok is _STARTED or future.done():
                continue
            if ok:
                future.set_result(payload)
            else:
                kind, message = payload
                future.set_exception(_ERRORS.get(kind, SimulationFailed)(message))
        self._fail_all()

    def _fail_all(self) -> None:
        with self._lock:
            self.alive = False
            pending, self._pending = self._pending, {}
        for futures in pending.values():
            for future in futures:
                if not future.done():
                    future.set_exception(EnvMissing(f"worker {self.index} stopped"))

    def kill(self) -> None:
        self.process.kill()
        self.process.join(timeout=5)
        self.conn.close()
        self._fail_all()

    def stop(self) -> None:
        self._outbox.put((-1, "exit", {}))
        self._outbox.put(_STOP)
        self.process.join(timeout=5)
        self.conn.close()
        if self.process.is_alive():
            self.process.kill()
            self.process.join(timeout=5)
        self._fail_all()


class ProcessPool(SimulationPool):
    """`size` worker processes; a key stays on the worker that built its environment.

    `step_timeout_s` (None: no limit) also bounds the calls that are not steps: a reset by
    it, a restore or a replay by it per action (+1), so that a stuck one cannot hold its worker
    and every call queued behind it."""

    def __init__(self, size: int, step_timeout_s: float | None = None) -> None:
        self.size = size
        self.step_timeout_s = step_timeout_s
        self._ctx = multiprocessing.get_context("spawn")  # no fork of a threaded server
        self._workers: list[_Worker | None] = [None] * size
        self._home: dict[str, _Worker] = {}

    async def start(self) -> None:
        for index in range(self.size):
            self._workers[index] = _Worker(index, self._ctx)

    async def stop(self) -> None:
        workers = [w for w in self._workers if w is not None]
        await asyncio.gather(*(asyncio.to_thread(w.stop) for w in workers))
        self._workers = [None] * self.size
        self._home.clear()

    def _live(self, index: int) -> _Worker:
        worker = self._workers[index]
        if worker is None or not worker.alive:
            if worker is not None:
                log.warning("simulation worker %d died; starting a new one", index)
                for key in worker.keys:
                    self._home.pop(key, None)
            worker = _Worker(index, self._ctx)
            self._workers[index] = worker
        return worker

    def _place(self, key: str) -> _Worker:
        """The key's worker, or the least loaded live one for a new key."""
        worker = self._home.get(key)
        if worker is not None and worker.alive:
            return worker
        candidates = [self._live(i) for i in range(self.size)]
        worker = min(candidates, key=lambda w: len(w.keys))
        worker.keys.add(key)
        self._home[key] = worker
        return worker

    def _existing(self, key: str) -> _Worker:
        worker = self._home.get(key)
        if worker is None or not worker.alive:
            self._home.pop(key, None)
            raise EnvMissing(key)
        return worker

    def _limit(self, steps: int) -> float | None:
        """The time limit (s) of a call that simulates `steps` steps (or builds an env)."""
        return None if self.step_timeout_s is None else self.step_timeout_s * max(steps, 1)

    async def _call(self, worker: _Worker, op: str, timeout_s: float | None = None, **kwargs):
        started, result = worker.submit(op, **kwargs)
        future = asyncio.wrap_future(result)
        if timeout_s is None:
            return await future
        # Time spent queued behind the worker's other calls is not this call's.
        await asyncio.wrap_future(started)
        try:
            return await asyncio.wait_for(future, timeout_s)
        except TimeoutError:
            # The worker is stuck inside the integrator: kill it. Its other environments are
            # rebuilt by replay when their owners next call.
            await asyncio.to_thread(worker.kill)
            raise SimulationFailed(f"{op} took longer than the {timeout_s:g} s limit") from None

    async def reset(self, key: str, spec: EpisodeSpec) -> list[float]:
        return await self._call(self._place(key), "reset", self._limit(1), key=key, spec=spec)

    async def step(self, key: str, action: list[float], timeout_s: float) -> StepOutcome:
        return await self._call(self._existing(key), "step", timeout_s, key=key, action=action)

    async def restore(self, key: str, spec: EpisodeSpec, actions: Actions) -> ReplayOutcome:
        limit = self._limit(len(actions) + 1)
        return await self._call(
            self._place(key), "restore", limit, key=key, spec=spec, actions=actions
        )

    async def replay(
        self, spec: EpisodeSpec, actions: Actions, record: Path | None = None
    ) -> ReplayOutcome:
        worker = min((self._live(i) for i in range(self.size)), key=lambda w: len(w.keys))
        limit = self._limit(len(actions) + 1)
        return await self._call(worker, "replay", limit, spec=spec, actions=actions, record=record)

    async def drop(self, key: str) -> None:
        worker = self._home.pop(key, None)
        if worker is None:
            return
        worker.keys.discard(key)
        if worker.alive:
            try:
                await self._call(worker, "drop", key=key)
            except EnvMissing:
                pass
