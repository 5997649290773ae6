"""A real `l2run grader serve` in a subprocess, for tests that need uvicorn or kill -9."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

STARTUP_TIMEOUT_S = 60.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def l2run(*args: str, env: dict | None = None) -> str:
    """Run `l2run ...` and return its stdout (raises on a non-zero exit)."""
    done = subprocess.run(
        [sys.executable, "-m", "l2run.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


class GraderServer:
    """`l2run grader serve` on a free port; `kill()` is SIGKILL, like a crash."""

    def __init__(self, db_url: str, rounds_file: Path, log_path: Path, secret: str = "s3cret"):
        self.db_url = db_url
        self.rounds_file = rounds_file
        self.log_path = log_path
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, "L2RUN_GRADER_SECRET": secret}
        self.process: subprocess.Popen | None = None

    def start(self) -> GraderServer:
        log = open(self.log_path, "ab")  # noqa: SIM115 (closed with the process)
        self.process = subprocess.Popen(
            [
                sys.executable, "-m", "l2run.cli", "grader", "serve",
                "--port", str(self.port), "--db", self.db_url,
                "--rounds-file", str(self.rounds_file), "--workers", "1",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=self.env,
        )  # fmt: skip
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"grader exited: {self.log_path.read_text()[-2000:]}")
            try:
                if requests.get(f"{self.base}/healthz", timeout=1).status_code == 200:
                    return self
            except requests.ConnectionError:
                time.sleep(0.2)
        raise RuntimeError(f"grader did not start: {self.log_path.read_text()[-2000:]}")

    def kill(self) -> None:
        """SIGKILL the server and its whole process group's children we know of (workers)."""
        if self.process is None:
            return
        children = _children(self.process.pid)
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)
        for pid in children:  # worker processes would otherwise linger as orphans
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.process = None

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.kill()
        self.process = None


def _children(pid: int) -> list[int]:
    """Direct children of `pid` (Linux /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        if parent == pid:
            found.append(int(entry.name))
    return found
