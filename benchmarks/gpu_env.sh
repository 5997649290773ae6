# Sourced by the scripts that run on a lent GPU machine (device tool): gpu_bench.sh and
# docs/training/gpu_search.sh. That machine has JAX with CUDA but cannot reach PyPI, and lacks
# the pure-Python packages the engine and the search import besides JAX and NumPy. So:
#
#   bash benchmarks/gpu_bench.sh --fetch-wheels    # here, once per checkout: wheels into .whl/
#
# and there, sourcing this installs them into /tmp/site and sets the environment (src on the
# path, JAX on CUDA unless JAX_PLATFORMS says otherwise, OUT_DIR = $OUT or ./out), and prints
# the card into $OUT_DIR/card.txt.

WHEELS=.whl
# The versions the package's own environment resolves to (pyproject: gymnasium>=1.0,<2 with
# its own requirements; cma>=3.3,<5 for the controller searches).
PACKAGES=(gymnasium==1.4.0 farama-notifications==0.0.6 typing-extensions==4.16.0
  cloudpickle==3.1.3 cma==4.5.0)

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
