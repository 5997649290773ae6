#!/usr/bin/env bash
# A ×40 CMA-ES search of the runner's obstacle-phase groups, ranked on 96 courses per candidate,
# in one call on a lent GPU machine (device tool). Stage 25 (docs/training/STAGES.md) found
# that the 12 courses a CPU search here affords rank candidates mostly by the luck of the
# courses; a GPU runs 8× more per generation in about the time.
#
#   bash benchmarks/gpu_bench.sh --fetch-wheels     # here, once per checkout: wheels into .whl/
#   bash docs/training/gpu_search.sh [SECONDS]      # there: run(command=..., carry=[".whl"])
#
# It searches from the shipped runner with docs/training/gpu_search.json (16 candidates × 96
# courses × 600 steps per generation, 24 of them with a tall obstacle; swing_hip, timing,
# obstacle, trail and hold free; 30 m off the fitness per fall, stage 28) for SECONDS
# (default 420) of wall clock, then stops; the search writes mean.json, best.json and
# curve.csv under $OUT/search after every generation, so what the last finished generation
# left comes back. Validate the mean here on 120 fresh courses
# (docs/training/cruiser_stage22/jax_courses.py) and then in OpenSim on validation courses
# before shipping it: stages 28-29 halved the falls in such screens and not in OpenSim.
# GPU_SEARCH_CONFIG / GPU_SEARCH_SEED: another config file or course seed (a CPU smoke test
# uses a 2 × 2 config).
set -euo pipefail
cd "$(dirname "$0")/../.."

# shellcheck source=../../benchmarks/gpu_env.sh
source benchmarks/gpu_env.sh "$@"

SECONDS_LIMIT=${1:-420}
CONFIG=${GPU_SEARCH_CONFIG:-docs/training/gpu_search.json}
timeout --signal=INT "$SECONDS_LIMIT" python3 - "$CONFIG" "${GPU_SEARCH_SEED:-4100000}" \
  "$OUT_DIR/search" <<'PY' 2>&1 | tee "$OUT_DIR/search_log.txt" || true
import json
import sys

from l2run.train import gait_search as gs
from l2run.train.evaluate import pretrained_path

config_path, seed, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
options = json.load(open(config_path))
cfg = gs.SearchConfig(max_env_steps=10**12, seed=seed, difficulty=2, engine="jax", **options)
x0 = gs.start_params(pretrained_path(), cfg.controller)
try:
    gs.search(gs.population_fn(cfg), cfg, out, x0=x0)
except KeyboardInterrupt:
    print("stopped at the time limit; the files of the last finished generation are kept")
PY
ls -l "$OUT_DIR/search"
