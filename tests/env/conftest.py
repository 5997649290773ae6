"""Fixtures for the environment tests."""

from __future__ import annotations

import pytest
from stub_engine import StandingStubEngine


@pytest.fixture(scope="module")
def osim_env():
    """One OpenSim-backed RunEnv shared by a module's tests (building one takes ~0.3 s)."""
    from l2run.env.runenv import RunEnv

    env = RunEnv(visualize=False)
    yield env
    env.close()


@pytest.fixture
def stub_env(monkeypatch):
    """A RunEnv around StandingStubEngine (no OpenSim)."""
    import l2run.env.runenv as runenv

    monkeypatch.setattr(runenv, "make_engine", lambda name, **kw: StandingStubEngine())
    return runenv.RunEnv(visualize=False)
