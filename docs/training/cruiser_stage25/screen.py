"""Stage 25: several cruiser files on the same courses in ONE batch in the JAX engine.

    python docs/training/cruiser_stage25/screen.py SCHEME:SUBSTEPS FIRST-LAST HORIZON OUT.json \
        POLICY.json [...]

Needs `walker.py` with docs/training/cruiser_stage23/stride.patch applied. OUT gets, per policy,
the mean distance, the falls, the survivors' mean, the fallen seeds and each course's distance
and steps; `saved`/`new` count fallen courses against the first policy's.
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np

from l2run.train.cruiser import CruiserPolicy
from l2run.train.evaluate import parse_seeds
from l2run.train.gait_search import jax_population_fn

DIFFICULTY = 2
MAX_OBSTACLES = 3


def main(integrator: str, seeds: str, horizon: str, out: str, *policies: str) -> None:
    courses = parse_seeds(seeds)
    n_steps = int(horizon)
    params = np.array([CruiserPolicy.load(p).params for p in policies])
    population = jax_population_fn(DIFFICULTY, MAX_OBSTACLES, "cruiser", integrator=integrator)
    start = time.time()
    distance, steps = population.multi(params, n_steps, courses)
    distance = distance.reshape(len(policies), len(courses))
    steps = steps.reshape(len(policies), len(courses))
    fell = steps < n_steps
    results = []
    for path, d, n, f in zip(policies, distance, steps, fell, strict=True):
        results.append(
            {
                "policy": path,
                "mean": float(d.mean()),
                "falls": int(f.sum()),
                "survivors": float(d[~f].mean()) if (~f).any() else 0.0,
                "saved": int((fell[0] & ~f).sum()),
                "new": int((~fell[0] & f).sum()),
                "fell_seeds": [c for c, x in zip(courses, f, strict=True) if x],
                "distance": [round(float(x), 3) for x in d],
                "steps": [int(x) for x in n],
            }
        )
        r = results[-1]
        print(
            f"{path}: {r['mean']:.2f} m, {r['falls']}/{len(courses)} falls, survivors "
            f"{r['survivors']:.2f} m (saved {r['saved']}, new {r['new']})"
        )
    meta = {"integrator": integrator, "courses": seeds, "horizon": n_steps}
    meta["wall_s"] = round(time.time() - start, 1)
    with open(out, "w") as fh:
        json.dump({**meta, "results": results}, fh, indent=1)


if __name__ == "__main__":
    main(*sys.argv[1:])
