#!/usr/bin/env bash
# The GPU figures of benchmarks/RESULTS.md in one call on a lent GPU machine (device tool).
#
# That machine has JAX with CUDA but cannot reach PyPI, and lacks the two pure-Python packages
# the JAX engine imports besides JAX and NumPy (gymnasium, Farama-Notifications). So:
#
#   bash benchmarks/gpu_bench.sh --fetch-wheels    # here, once per checkout: wheels into .whl/
#   bash benchmarks/gpu_bench.sh                   # there: run(command=..., carry=[".whl"])
#
# There it installs the wheels into /tmp/site, prints the card, and runs bench_engines.py for the
# default scheme (imex_stiff x10) at N = 4,096 ... 65,536 in float32, then N = 4,096 in float64,
# writing each table under $OUT (or ./out). About 5 min on an H100 (compiles included); the
# device budget is 15 min per session, so this leaves time for one rerun.
set -euo pipefail
cd "$(dirname "$0")/.."

WHEELS=.whl
# The versions the package's own environment resolves to (pyproject: gymnasium>=1.0,<2).
PACKAGES=(gymnasium==1.4.0 farama-notifications==0.0.6)

if [ "${1:-}" = "--fetch-wheels" ]; then
  mkdir -p "$WHEELS"
  grep -qx "/$WHEELS/" .git/info/exclude 2>/dev/null || echo "/$WHEELS/" >>.git/info/exclude
  python3 -m pip download --no-deps --only-binary=:all: -d "$WHEELS" "${PACKAGES[@]}"
  ls -l "$WHEELS"
  exit 0
fi

OUT_DIR=${OUT:-out}
mkdir -p "$OUT_DIR"
if ls "$WHEELS"/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site "$WHEELS"/*.whl
  export PYTHONPATH=/tmp/site
fi
export PYTHONPATH=src${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1 JAX_PLATFORMS=${JAX_PLATFORMS:-cuda}
nvidia-smi -L 2>&1 | tee "$OUT_DIR/card.txt" || true
python3 -c "import jax; print('JAX', jax.__version__, jax.devices())" | tee -a "$OUT_DIR/card.txt"

# GPU_BENCH_SIZES / GPU_BENCH_SIZES64: other batch sizes (a CPU smoke test uses 64).
python3 benchmarks/bench_engines.py --skip-opensim --skip-single --sizes "${GPU_BENCH_SIZES:-4096,16384,65536}" \
  --dtypes float32 --integrator imex_stiff:10 --batch-steps 10 2>&1 | tee "$OUT_DIR/bench_float32.txt"
python3 benchmarks/bench_engines.py --skip-opensim --skip-single --sizes "${GPU_BENCH_SIZES64:-4096}" \
  --dtypes float64 --integrator imex_stiff:10 --batch-steps 5 2>&1 | tee "$OUT_DIR/bench_float64.txt"
