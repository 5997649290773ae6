"""Grader load: N concurrent clients step a real `l2run grader serve` for T seconds.

    python benchmarks/bench_grader.py --clients 50 --seconds 60

Each client is a participant running submissions back to back (create, reset, step until done,
next trial, submit). Reports step latency p50/p99, throughput, errors (any non-200 or transport
failure) and lost steps (answered steps missing from the database, or logged steps never
answered). The server runs in a subprocess with its default worker pool (one per core).
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np
from tqdm import tqdm

STARTUP_TIMEOUT_S = 90.0
N_MUSCLES = 18


@dataclass
class ClientStats:
    latencies: list[float] = field(default_factory=list)  # s, per answered step
    answered_at: list[float] = field(default_factory=list)  # monotonic time of each answer
    errors: list[str] = field(default_factory=list)
    submissions: int = 0
    instances: set[str] = field(default_factory=set)


@dataclass
class BenchResult:
    clients: int
    seconds: float
    workers: int
    steps: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    steps_per_s: float
    # Second half of the run: every client's environment is built by then (steady state).
    steady_p50_ms: float
    steady_p99_ms: float
    steady_steps_per_s: float
    errors: int
    lost_steps: int
    submissions: int
    load_average: float  # 1-min system load at the end (the machine is shared)
    cpu_ms_per_step: float  # server + workers CPU per answered step: capacity ≈ cores / this
    first_errors: list[str]

    def markdown(self) -> str:
        return (
            f"| {self.clients} | {self.seconds:.0f} | {self.workers} | {self.steps} | "
            f"{self.steps_per_s:.1f} | {self.p50_ms:.0f} | {self.p99_ms:.0f} | {self.max_ms:.0f} | "
            f"{self.steady_steps_per_s:.1f} | {self.steady_p50_ms:.0f} | "
            f"{self.steady_p99_ms:.0f} | {self.submissions} | {self.errors} | {self.lost_steps} | "
            f"{self.cpu_ms_per_step:.1f} | {self.load_average:.1f} |"
        )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _add_users(db_url: str, count: int) -> list[str]:
    """What `l2run grader add-user` does, for `count` participants at once."""
    from l2run.grader.services.participants import add_participant
    from l2run.grader.storage.database import Database

    db = Database(db_url)
    db.migrate()
    with db.session() as session:
        tokens = [add_participant(session, f"bench-{i}") for i in range(count)]
    db.dispose()
    return tokens


def _action(t: int, phase: float) -> list[float]:
    return [0.5 + 0.4 * math.sin(0.2 * t + phase + i) for i in range(N_MUSCLES)]


async def _participant(base: str, token: str, deadline: float, stats: ClientStats, bar) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=base, timeout=None, headers=headers) as http:

        async def post(route: str, body=None):
            response = await http.post(route, json=body)
            if response.status_code != 200:
                raise RuntimeError(f"{route}: {response.status_code} {response.text[:200]}")
            return response.json()

        phase = (hash(token) % 1000) / 100.0
        while time.monotonic() < deadline:
            try:
                created = await post("/v1/envs/", {"token": token, "env_id": "RunEnv"})
                instance = created["instance_id"]
                stats.instances.add(instance)
                observation = (await post(f"/v1/envs/{instance}/reset/"))["observation"]
                while observation is not None and time.monotonic() < deadline:
                    done, t = False, 0
                    while not done and time.monotonic() < deadline:
                        started = time.perf_counter()
                        reply = await post(
                            f"/v1/envs/{instance}/step/", {"action": _action(t, phase)}
                        )
                        stats.latencies.append(time.perf_counter() - started)
                        stats.answered_at.append(time.monotonic())
                        bar.update(1)
                        done, t = reply["done"], t + 1
                    if done:
                        observation = (await post(f"/v1/envs/{instance}/reset/"))["observation"]
                if observation is None:
                    await post(f"/v1/envs/{instance}/monitor/close/")
                    stats.submissions += 1
                await post(f"/v1/envs/{instance}/close/")
            except Exception as exc:  # counted, reported; the client carries on
                stats.errors.append(f"{type(exc).__name__}: {exc}")
                await asyncio.sleep(0.5)


def _logged_steps(db_url: str, instances: set[str]) -> int:
    from sqlalchemy import func, select

    from l2run.grader.storage.database import Database
    from l2run.grader.storage.models import Episode

    db = Database(db_url)
    with db.session() as session:
        total = session.scalar(
            select(func.coalesce(func.sum(Episode.steps), 0)).where(
                Episode.submission_id.in_(instances)
            )
        )
    db.dispose()
    return int(total)


def run_benchmark(clients: int = 50, seconds: float = 60.0, workers: int | None = None):
    workers = workers or os.cpu_count() or 1
    with tempfile.TemporaryDirectory(prefix="l2run-bench-") as folder:
        db_url = f"sqlite:///{Path(folder) / 'bench.db'}"
        tokens = _add_users(db_url, clients)
        port = _free_port()
        env = {**os.environ, "L2RUN_GRADER_MAX_OPEN_INSTANCES": "2"}
        log = open(Path(folder) / "server.log", "wb")  # noqa: SIM115
        server = subprocess.Popen(
            [sys.executable, "-m", "l2run.cli", "grader", "serve", "--port", str(port),
             "--db", db_url, "--workers", str(workers)],
            stdout=log, stderr=subprocess.STDOUT, env=env,
        )  # fmt: skip
        base = f"http://127.0.0.1:{port}"
        try:
            _wait_ready(base, server)
            stats = [ClientStats() for _ in tokens]
            deadline = time.monotonic() + seconds

            async def everyone():
                with tqdm(desc=f"{clients} clients, steps", unit="step") as bar:
                    pairs = zip(tokens, stats, strict=True)
                    runs = [_participant(base, t, deadline, s, bar) for t, s in pairs]
                    await asyncio.gather(*runs)

            cpu_before = _cpu_seconds(server.pid)
            started = time.monotonic()
            asyncio.run(everyone())
            elapsed = time.monotonic() - started
            halfway = started + elapsed / 2
            server_cpu = _cpu_seconds(server.pid) - cpu_before
        finally:
            server.terminate()
            server.wait(timeout=60)
            log.close()
        latencies = np.array([x for s in stats for x in s.latencies]) * 1000.0
        at = np.array([x for s in stats for x in s.answered_at])
        steady = latencies[at >= halfway] if len(at) else latencies
        answered = len(latencies)
        instances = set().union(*(s.instances for s in stats))
        logged = _logged_steps(db_url, instances)
        errors = [e for s in stats for e in s.errors]
        return BenchResult(
            clients=clients,
            seconds=elapsed,
            workers=workers,
            steps=answered,
            p50_ms=float(np.percentile(latencies, 50)) if answered else math.nan,
            p99_ms=float(np.percentile(latencies, 99)) if answered else math.nan,
            max_ms=float(latencies.max()) if answered else math.nan,
            steps_per_s=answered / elapsed,
            steady_p50_ms=float(np.percentile(steady, 50)) if len(steady) else math.nan,
            steady_p99_ms=float(np.percentile(steady, 99)) if len(steady) else math.nan,
            steady_steps_per_s=len(steady) / (elapsed / 2),
            errors=len(errors),
            lost_steps=abs(logged - answered),
            submissions=sum(s.submissions for s in stats),
            load_average=os.getloadavg()[0],
            cpu_ms_per_step=1000.0 * server_cpu / answered if answered else math.nan,
            first_errors=errors[:5],
        )


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of `pid` and its live children (the simulation workers), s."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(entry.name) == pid or int(fields[1]) == pid:
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


def _wait_ready(base: str, server: subprocess.Popen) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError("the grader exited during startup")
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise RuntimeError("the grader did not start")


HEADER = (
    "| clients | seconds | workers | steps | steps/s | p50 ms | p99 ms | max ms "
    "| 2nd-half steps/s | 2nd-half p50 ms | 2nd-half p99 ms | submissions | errors | lost steps "
    "| CPU ms/step | load avg |\n" + "|---" * 16 + "|"
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--workers", type=int, default=None, help="default: one per core")
    args = parser.parse_args()
    result = run_benchmark(args.clients, args.seconds, args.workers)
    print(HEADER)
    print(result.markdown())
    for error in result.first_errors:
        print("error:", error)
    sys.exit(1 if result.errors or result.lost_steps else 0)


if __name__ == "__main__":
    main()
