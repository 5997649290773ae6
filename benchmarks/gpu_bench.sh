#!/usr/bin/env bash
# The GPU figures of benchmarks/RESULTS.md in one call on a lent GPU machine (device tool).
#
# That machine has JAX with CUDA but cannot reach PyPI, and lacks the pure-Python packages the
# JAX engine imports besides JAX and NumPy (benchmarks/gpu_env.sh installs them). So:
#
#   bash benchmarks/gpu_bench.sh --fetch-wheels    # here, once per checkout: wheels into .whl/
#   bash benchmarks/gpu_bench.sh                   # there: run(command=..., carry=[".whl"],
#                                                  #   timeout_s=600)
#
# There it installs the carried wheels, prints the card, and runs, each stage under its own time
# limit and all of them within GPU_BENCH_TOTAL seconds (default 540, so that the device tool's
# 600-second limit never cuts the last stage; the device budget is 15 min per session, so there
# is one try):
#   1. device_parity.py: the same float64 steps on the GPU and, in a process of its own at the
#      same time, on the CPU (the check of "the same code on CPU and GPU");
#   2. bench_engines.py in float32 for the default scheme (imex_stiff x10) at N = 4,096 and
#      65,536, a 20-step lax.scan rollout and a training-like autoreset rollout (regular first
#      steps) at the largest N;
#   3. the same step at N = 65,536 in float64;
#   4. the autoreset rollout with graded first steps at the largest N (its first-step buckets
#      compile ~9x a plain step: it gets what time is left).
# Every table row is printed as it finishes, under $OUT (or ./out), so a stage cut by its limit
# keeps what it measured. Session 33 (2026-12-04, an H200) compiled each program in 35-49 s.
set -euo pipefail
cd "$(dirname "$0")/.."
START=$SECONDS
TOTAL=${GPU_BENCH_TOTAL:-540}

# shellcheck source=gpu_env.sh
source benchmarks/gpu_env.sh "$@"

# A stage that fails or runs out of time does not stop the next; each is cut at its own limit
# or at what is left of TOTAL, whichever comes first, and skipped when under 20 s are left.
# GPU_BENCH_SIZES / GPU_BENCH_SIZES64: other batch sizes (a CPU smoke test uses 64).
stage() { # stage LIMIT_S LOG_NAME COMMAND...
  local limit=$1 log=$2 left=$((TOTAL - (SECONDS - START) - 10))
  shift 2
  if [ "$left" -lt "$limit" ]; then limit=$left; fi
  if [ "$limit" -lt 20 ]; then
    echo "stage $log: skipped (${left} s left of ${TOTAL})" | tee "$OUT_DIR/$log"
    return 0
  fi
  echo "stage $log: up to $limit s"
  timeout --kill-after=5 --signal=INT "$limit" "$@" 2>&1 | tee "$OUT_DIR/$log" ||
    echo "stage $log: stopped or failed" | tee -a "$OUT_DIR/$log"
}
SIZES=${GPU_BENCH_SIZES:-4096,65536}
LARGEST=${SIZES##*,}
stage "${GPU_BENCH_LIMIT_PARITY:-150}" parity.txt env JAX_PLATFORMS="${GPU_PARITY_PLATFORMS:-cuda,cpu}" \
  python3 benchmarks/device_parity.py --n 256 --steps 100 ${GPU_PARITY_DEVICE:+--device "$GPU_PARITY_DEVICE"}
# float32: the step at each N; at the largest N also a 20-step lax.scan rollout (no host
# round-trip) and a training-like rollout with autoreset (episodes <= 100 steps, so ~1 % of the
# runners start an episode each step).
stage "${GPU_BENCH_LIMIT32:-240}" bench_float32.txt python3 benchmarks/bench_engines.py \
  --skip-opensim --skip-single --sizes "$SIZES" --dtypes float32 --integrator imex_stiff:10 \
  --batch-steps 10 --rollout-steps 20 --autoreset-steps 20 --autoreset-first-steps regular
stage "${GPU_BENCH_LIMIT64:-90}" bench_float64.txt python3 benchmarks/bench_engines.py \
  --skip-opensim --skip-single --sizes "${GPU_BENCH_SIZES64:-65536}" --dtypes float64 \
  --integrator imex_stiff:10 --batch-steps 5
stage "${GPU_BENCH_LIMIT_GRADED:-400}" bench_float32_graded.txt python3 benchmarks/bench_engines.py \
  --skip-opensim --skip-single --sizes "$LARGEST" --dtypes float32 --integrator imex_stiff:10 \
  --batch-steps 0 --autoreset-steps 20 --autoreset-first-steps graded --rollout-sizes "$LARGEST"
echo "gpu_bench: $((SECONDS - START)) s in all"
