"""The issue's load target: 50 concurrent clients for 60 s against `l2run grader serve`, with
no error and no lost step (slow: run with -m slow)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_grader.py"


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_50_clients_for_60_s_without_errors_or_lost_steps():
    spec = importlib.util.spec_from_file_location("bench_grader", BENCH)
    bench = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = bench  # dataclasses look their module up there
    spec.loader.exec_module(bench)
    result = bench.run_benchmark(clients=50, seconds=60.0)
    assert result.errors == 0, result.first_errors
    assert result.lost_steps == 0
    assert result.steps > 50  # every client got answers
