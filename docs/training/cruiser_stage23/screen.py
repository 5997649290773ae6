"""Stage 23: stride-adjustment settings on many courses at once in the JAX engine
(docs/training/STAGES.md, "Stage 23"). Needs `walker.py` with `stride.patch` applied (the
"stride" group).

    python docs/training/cruiser_stage23/screen.py SCHEME:SUBSTEPS FIRST-LAST HORIZON \
        BASE.json OUT.json SETTING [SETTING ...]

Each SETTING is the stride group's values, comma-separated (gain rad/m, margin m, cap rad,
weight of the landing two steps ahead, then optionally the weights of shortening, lengthening
and the passed obstacle, and the largest shift acted on, m); all zeros is BASE itself. Every
setting runs on every course in ONE batch (the search's rollout, `gait_search.jax_population_fn`)
and OUT gets, per setting, the mean distance, the falls and each course's distance and steps.
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np

from l2run.train.controller_params import group_offsets
from l2run.train.cruiser import PARAM_LAYOUT, CruiserPolicy
from l2run.train.evaluate import parse_seeds
from l2run.train.gait_search import jax_population_fn

DIFFICULTY = 2
MAX_OBSTACLES = 3


def main(integrator: str, seeds: str, horizon: str, base: str, out: str, *settings: str) -> None:
    courses = parse_seeds(seeds)
    n_steps = int(horizon)
    params = CruiserPolicy.load(base).params
    offset = group_offsets(PARAM_LAYOUT)["stride"]
    values = [[float(v) for v in s.split(",")] for s in settings]
    candidates = []
    for v in values:
        x = params.copy()
        x[offset : offset + len(v)] = v
        candidates.append(x)
    population = jax_population_fn(DIFFICULTY, MAX_OBSTACLES, "cruiser", integrator=integrator)
    start = time.time()
    distance, steps = population.multi(np.array(candidates), n_steps, courses)
    distance = distance.reshape(len(candidates), len(courses))
    steps = steps.reshape(len(candidates), len(courses))
    results = []
    for v, d, n in zip(values, distance, steps, strict=True):
        fell = n < n_steps
        results.append(
            {
                "stride": v,
                "mean": float(d.mean()),
                "falls": int(fell.sum()),
                "survivors": float(d[~fell].mean()) if (~fell).any() else 0.0,
                "fell_seeds": [c for c, f in zip(courses, fell, strict=True) if f],
                "distance": [round(float(x), 3) for x in d],
                "steps": [int(x) for x in n],
            }
        )
        print(f"{v}: {d.mean():.2f} m, {fell.sum()}/{len(courses)} falls", flush=True)
    summary = {
        "integrator": integrator,
        "courses": [courses[0], courses[-1]],
        "horizon": n_steps,
        "base": base,
        "wall_s": time.time() - start,
        "results": results,
    }
    with open(out, "w") as f:
        json.dump(summary, f)


if __name__ == "__main__":
    if len(sys.argv) < 7:
        sys.exit(__doc__)
    main(*sys.argv[1:])
