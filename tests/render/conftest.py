"""Fixtures for the render tests (a fake engine, a short recorded episode, a private Xvfb)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from l2run.render.recording import load_recording

from .fake_engine import FakeEngine, record_fake_episode


@pytest.fixture
def fake_engine() -> FakeEngine:
    return FakeEngine()


@pytest.fixture
def recording_file(tmp_path: Path) -> Path:
    return record_fake_episode(
        tmp_path / "episode.npz", steps=40, obstacles=[[1.2, 0.05, 0.1], [2.5, -0.02, 0.12]]
    )


@pytest.fixture
def recording(recording_file: Path):
    return load_recording(recording_file)


@pytest.fixture(scope="session")
def xvfb_display():
    """A private Xvfb display ':N' for the whole session; skips when Xvfb is not installed.

    Session scope on purpose: Tk keeps its X connection after a window is destroyed, and an X
    server that goes away under a live connection makes Xlib end the process.
    """
    import shutil
    import subprocess

    exe = shutil.which("Xvfb")
    if exe is None:
        pytest.skip("Xvfb not installed (apt-get install -y xvfb): live-window test skipped")
    read_fd, write_fd = os.pipe()
    proc = subprocess.Popen(
        [exe, "-displayfd", str(write_fd), "-screen", "0", "800x600x24", "-nolisten", "tcp"],
        pass_fds=(write_fd,),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    os.close(write_fd)
    try:
        with os.fdopen(read_fd) as pipe:
            number = pipe.readline().strip()
        if not number:
            pytest.skip("Xvfb did not start")
        yield f":{number}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
