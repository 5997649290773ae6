"""Settings for every test process (pytest-xdist runs one per core)."""

from __future__ import annotations

import os
from pathlib import Path

from l2run.engines.cpu_threads import use_default_cpu_threads

# One XLA CPU thread per test process, as the `l2run` command line runs the JAX engine: the
# test processes already fill the cores, and this engine's small kernels run fastest on one
# thread (`l2run.engines.cpu_threads`). Set before any test starts JAX; subprocesses inherit it.
use_default_cpu_threads()

# Compiled JAX programs are shared through the repository's own cache folder (the engine's
# default, ~/.cache/l2run/xla, is the user's), by every test process and their subprocesses.
TEST_XLA_CACHE = Path(__file__).resolve().parents[1] / ".pytest_cache" / "jax_compilation"
os.environ.setdefault("L2RUN_XLA_CACHE", str(TEST_XLA_CACHE))
