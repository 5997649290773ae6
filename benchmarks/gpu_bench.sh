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
# default scheme (imex_stiff x10) at N = 4,096 and 65,536 in float32 (and rollouts at the
# largest N), then N = 65,536 in float64, then device_parity.py (the same float64 steps on the
# GPU and the CPU), writing each table under $OUT (or ./out). About 9.5 minutes at most (the
# stage limits below; run's own limit is 10): the device budget is 15 min per session, so there
# is one try. The session of 2026-12-04 (benchmarks/RESULTS.md) took 6.5 min for N = 4,096,
# 16,384 and 65,536 with compiles of 35-49 s per program on an H200.
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=gpu_env.sh
source benchmarks/gpu_env.sh "$@"

# Each stage has its own time limit (seconds) and a stage that fails or runs out of time does
# not stop the next, so one call brings back what finished. GPU_BENCH_SIZES / GPU_BENCH_SIZES64:
# other batch sizes (a CPU smoke test uses 64).
stage() { # stage LIMIT_S LOG_NAME COMMAND...
  local limit=$1 log=$2
  shift 2
  timeout --kill-after=15 --signal=INT "$limit" "$@" 2>&1 | tee "$OUT_DIR/$log" || echo "stage $log: stopped or failed"
}
SIZES=${GPU_BENCH_SIZES:-4096,65536}
# float32: the step at each N; at the largest N also a 20-step lax.scan rollout (no host
# round-trip) and two training-like rollouts with autoreset (episodes <= 100 steps, so ~1 % of
# the runners start an episode each step), with the graded first step and with the regular one.
stage "${GPU_BENCH_LIMIT32:-390}" bench_float32.txt python3 benchmarks/bench_engines.py \
  --skip-opensim --skip-single --sizes "$SIZES" --dtypes float32 --integrator imex_stiff:10 \
  --batch-steps 10 --rollout-steps 20 --autoreset-steps 20
stage "${GPU_BENCH_LIMIT64:-90}" bench_float64.txt python3 benchmarks/bench_engines.py \
  --skip-opensim --skip-single --sizes "${GPU_BENCH_SIZES64:-65536}" --dtypes float64 \
  --integrator imex_stiff:10 --batch-steps 5
# The same float64 steps on the GPU and on this machine's CPU (round-off at the first step).
stage "${GPU_BENCH_LIMIT_PARITY:-80}" parity.txt env JAX_PLATFORMS="${GPU_PARITY_PLATFORMS:-cuda,cpu}" \
  python3 benchmarks/device_parity.py --n 256 --steps 100 ${GPU_PARITY_DEVICE:+--device "$GPU_PARITY_DEVICE"}
