"""The default scheme against a 4x finer one, closed loop, under the pretrained runner.

Open-loop tests compare states over a fraction of a second; a walking controller over obstacles
amplifies what they cannot see. On 2026-12-02 the fibre solve started from lengths extrapolated
from the previous substep: every open-loop test passed, yet under `imex_stiff` x10 the runner
fell on 19 of these 40 courses in 10 s instead of 12 (x40: 12; OpenSim: 9), because where a
fibre below its minimum length has a slack tendon its velocity falls steeply, plain Newton
oscillated there and the start decided where the fibre went (benchmarks/RESULTS.md, "A
regression found and undone"). This checks the fall counts of the two schemes on the same
courses, so that such a change shows up.
"""

from __future__ import annotations

import numpy as np
import pytest

from l2run.train.cruiser import CruiserPolicy
from l2run.train.evaluate import pretrained_cruiser_path
from l2run.train.gait_search import jax_population_fn

COURSES = list(range(500001, 500041))  # validation courses (never searched on)
HORIZON = 600  # steps: the obstacles and the walker's falls at them come within 6 s
DIFFICULTY, MAX_OBSTACLES = 2, 3
# Measured over these 600 steps: 9 falls under x10 and 11 under x40 (with the plain Newton solve
# 11 and 11; with its extrapolated start, 18 under x10). Round-off-sized changes move a count
# by ~2-3 either way.
MAX_FALL_DIFFERENCE = 4
MIN_FALLS = 5  # the courses must test the gait at all


@pytest.mark.slow
def test_default_scheme_falls_as_often_as_a_finer_one():
    params = CruiserPolicy.load(pretrained_cruiser_path()).params[None, :]
    falls = {}
    for integrator in ("imex_stiff:10", "imex_stiff:40"):
        population = jax_population_fn(DIFFICULTY, MAX_OBSTACLES, "cruiser", integrator=integrator)
        _, steps = population.multi(params, HORIZON, COURSES)
        falls[integrator] = int(np.sum(np.asarray(steps) < HORIZON))
    assert falls["imex_stiff:40"] >= MIN_FALLS, falls
    assert abs(falls["imex_stiff:10"] - falls["imex_stiff:40"]) <= MAX_FALL_DIFFERENCE, falls
