"""Stage 22: a cruiser file on many courses at once in the JAX engine
(docs/training/STAGES.md, "Stage 22").

    python docs/training/cruiser_stage22/jax_courses.py SCHEME:SUBSTEPS FIRST-LAST POLICY.json

runs one 1,000-step episode per course seed in a single batch (the search's own rollout,
`gait_search.jax_population_fn`) and prints a JSON object shaped like `l2run evaluate --json`'s
(`episodes`: seed, distance, steps, fell), so the same tools compare it with OpenSim's.
"""

from __future__ import annotations

import json
import sys

from l2run.engines.base import TIMESTEP_LIMIT
from l2run.train.cruiser import CruiserPolicy
from l2run.train.evaluate import parse_seeds
from l2run.train.gait_search import jax_population_fn

DIFFICULTY = 2
MAX_OBSTACLES = 3


def main(integrator: str, seeds: str, policy_path: str) -> None:
    courses = parse_seeds(seeds)
    params = CruiserPolicy.load(policy_path).params
    population = jax_population_fn(DIFFICULTY, MAX_OBSTACLES, "cruiser", integrator=integrator)
    distance, steps = population.multi(params[None, :], TIMESTEP_LIMIT, courses)
    episodes = [
        {"seed": s, "distance": float(d), "steps": int(n), "fell": bool(n < TIMESTEP_LIMIT)}
        for s, d, n in zip(courses, distance, steps, strict=True)
    ]
    print(json.dumps({"policy": policy_path, "integrator": integrator, "episodes": episodes}))


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    main(*sys.argv[1:])
