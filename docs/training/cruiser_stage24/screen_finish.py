"""Stage 24: the runner with a faster cruise gait in the episode's last second(s), screened in
the JAX engine (docs/training/STAGES.md, "Stage 24"). Needs finish.patch applied (a scratch copy).

    python docs/training/cruiser_stage24/screen_finish.py SCHEME:SUBSTEPS FIRST-LAST POLICY.json \
        OUT.json START,RAMP,DTHIGH ...

Each setting (finish start s after reset, ramp s, change of the cruise thigh target rad) runs on
every course in one batch (the search's own rollout); "1000,1,0" is the runner itself.
"""

from __future__ import annotations

import json
import sys

import numpy as np

from l2run.engines.base import TIMESTEP_LIMIT
from l2run.train.controller_params import group_offsets
from l2run.train.cruiser import PARAM_LAYOUT, CruiserPolicy
from l2run.train.evaluate import parse_seeds
from l2run.train.gait_search import jax_population_fn

DIFFICULTY = 2
MAX_OBSTACLES = 3


def main(integrator: str, seeds: str, policy_path: str, out: str, *settings: str) -> None:
    courses = parse_seeds(seeds)
    base = CruiserPolicy.load(policy_path).params
    values = [tuple(float(v) for v in s.split(",")) for s in settings]
    offset, size = group_offsets(PARAM_LAYOUT)["finish"], dict(PARAM_LAYOUT)["finish"]
    xs = np.repeat(base[None, :], len(values), axis=0)
    xs[:, offset : offset + size] = values  # the patch's group
    population = jax_population_fn(DIFFICULTY, MAX_OBSTACLES, "cruiser", integrator=integrator)
    distance, steps = population.multi(xs, TIMESTEP_LIMIT, courses)
    results = []
    for value, d, n in zip(
        values, distance.reshape(len(xs), -1), steps.reshape(len(xs), -1), strict=True
    ):
        fell = n < TIMESTEP_LIMIT
        survivors = float(d[~fell].mean()) if (~fell).any() else None
        results.append(
            {"setting": value, "mean": float(d.mean()), "falls": int(fell.sum()),
             "survivor_mean": survivors, "distance": d.tolist(), "steps": n.tolist()}
        )  # fmt: skip
        print(value, f"{d.mean():.2f} m, {fell.sum()}/{len(courses)} falls", flush=True)
    with open(out, "w") as f:
        json.dump({"courses": courses, "integrator": integrator, "results": results}, f)


if __name__ == "__main__":
    if len(sys.argv) < 6:
        sys.exit(__doc__)
    main(*sys.argv[1:])
