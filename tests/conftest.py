"""Settings for every test process (pytest-xdist runs one per core)."""

from __future__ import annotations

import os

from l2run.engines.cpu_threads import CLI_DEFAULT_THREADS, THREADS_ENV

# One XLA CPU thread per test process, as the `l2run` command line runs the JAX engine: the
# test processes already fill the cores, and this engine's small kernels run fastest on one
# thread (`l2run.engines.cpu_threads`). Set before any test starts JAX; subprocesses inherit it.
os.environ.setdefault(THREADS_ENV, str(CLI_DEFAULT_THREADS))
