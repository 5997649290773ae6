"""Hand probes of the cruiser: variants of a base cruiser file, each on the same courses in one
batched deterministic JAX rollout (difficulty 2, 3 obstacles).

    python docs/training/cruiser_stage18/probe.py BASE.json VARIANTS.json [FIRST_SEED] [N] [SCHEME]

SCHEME is the JAX integrator, "imex_stiff:10" (the default) or e.g. "imex_stiff:40".

VARIANTS.json maps a label to {"group:index": "expression in v"}, e.g.
{"lean-0.02": {"cruise_torso:0": "v-0.02"}} (v: the base value); {} is the base itself.
A walker file as BASE is read as the cruiser that is exactly that walker.
"""

import json
import sys
import time

import numpy as np

from l2run.train import cruiser
from l2run.train.controller_params import group_offsets
from l2run.train.gait_search import jax_population_fn, start_params

base = start_params(sys.argv[1], cruiser.KIND)
variants = json.loads(open(sys.argv[2]).read())
first = int(sys.argv[3]) if len(sys.argv) > 3 else 600001
n = int(sys.argv[4]) if len(sys.argv) > 4 else 24
scheme = sys.argv[5] if len(sys.argv) > 5 else "imex_stiff:10"
offsets = group_offsets(cruiser.PARAM_LAYOUT)


def variant(changes: dict) -> np.ndarray:
    x = base.copy()
    for key, expression in changes.items():
        group, k = key.rsplit(":", 1)
        j = offsets[group] + int(k)
        x[j] = eval(expression, {"v": x[j]})  # noqa: S307 (a probe file written by hand)
    return x


labels = list(variants)
xs = np.stack([variant(variants[label]) for label in labels])
seeds = list(range(first, first + n))
population = jax_population_fn(2, 3, cruiser.KIND, scheme)
t0 = time.time()
d, steps = population.multi(xs, 1000, seeds)
d, steps = d.reshape(len(xs), -1), steps.reshape(len(xs), -1)
for label, di, si in zip(labels, d, steps, strict=True):
    alive = si >= 1000
    survivors = di[alive].mean() if alive.any() else 0.0
    falls = sorted(si[~alive].tolist())
    print(
        f"{label:24s} mean {di.mean():6.2f} falls {(~alive).sum():2d}/{n} "
        f"survivors {survivors:6.2f}  fall steps {falls}"
    )
print(f"{time.time() - t0:.0f} s")
