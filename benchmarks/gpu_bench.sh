#!/usr/bin/env bash
# The GPU figures of benchmarks/RESULTS.md in one call on a lent GPU machine (device tool).
#
# That machine has JAX with CUDA but cannot reach PyPI, and lacks the pure-Python packages the
# JAX engine imports besides JAX and NumPy (benchmarks/gpu_env.sh installs them). So:
#
#   bash benchmarks/gpu_bench.sh --fetch-wheels    # here, once per checkout: wheels into .whl/
#   bash benchmarks/gpu_bench.sh                   # there: run(command=..., carry=[".whl"])
#
# There it installs the carried wheels, prints the card, and runs bench_engines.py for the
# default scheme (imex_stiff x10) at N = 4,096 ... 65,536 in float32, then N = 4,096 in float64,
# writing each table under $OUT (or ./out). About 5 min on an H100 (compiles included); the
# device budget is 15 min per session, so this leaves time for one rerun.
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=gpu_env.sh
source benchmarks/gpu_env.sh "$@"

# GPU_BENCH_SIZES / GPU_BENCH_SIZES64: other batch sizes (a CPU smoke test uses 64).
python3 benchmarks/bench_engines.py --skip-opensim --skip-single --sizes "${GPU_BENCH_SIZES:-4096,16384,65536}" \
  --dtypes float32 --integrator imex_stiff:10 --batch-steps 10 2>&1 | tee "$OUT_DIR/bench_float32.txt"
python3 benchmarks/bench_engines.py --skip-opensim --skip-single --sizes "${GPU_BENCH_SIZES64:-4096}" \
  --dtypes float64 --integrator imex_stiff:10 --batch-steps 5 2>&1 | tee "$OUT_DIR/bench_float64.txt"
