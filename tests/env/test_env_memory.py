"""Memory: resets (which rebuild OpenSim's system when the course changes) must not leak."""

from __future__ import annotations

import gc
import sys
from pathlib import Path

import numpy as np
import pytest

from l2run.env.runenv import RunEnv

RSS_BUDGET_MB = 50.0

pytestmark = pytest.mark.skipif(
    not Path("/proc/self/status").exists(), reason="reads RSS from /proc (Linux only)"
)


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    raise RuntimeError("no VmRSS line")


def resets_grow_rss_by(n: int) -> float:
    env = RunEnv()
    # Warm-up: allocator pools, obstacle slots, lazily imported modules.
    for i in range(20):
        env.reset(difficulty=2, seed=i)
        env.step(np.full(18, 0.2))
    gc.collect()
    before = rss_mb()
    for i in range(n):
        # Alternate difficulties so that most resets rebuild the system (new course).
        env.reset(difficulty=(0, 1, 2)[i % 3], seed=1000 + i)
        if i % 10 == 0:  # integrate too (new Manager, states), but keep the test short
            env.step(np.full(18, 0.2))
    gc.collect()
    grown = rss_mb() - before
    env.close()
    print(f"RSS grew {grown:.1f} MB over {n} resets", file=sys.stderr)
    return grown


def test_rss_grows_less_than_50_mb_over_300_resets() -> None:
    assert resets_grow_rss_by(300) < RSS_BUDGET_MB


@pytest.mark.slow
def test_rss_grows_less_than_50_mb_over_1000_resets() -> None:
    assert resets_grow_rss_by(1000) < RSS_BUDGET_MB
