"""Settings for every test process (pytest-xdist runs one per core)."""

from __future__ import annotations

from l2run.engines.cpu_threads import use_default_cpu_threads

# One XLA CPU thread per test process, as the `l2run` command line runs the JAX engine: the
# test processes already fill the cores, and this engine's small kernels run fastest on one
# thread (`l2run.engines.cpu_threads`). Set before any test starts JAX; subprocesses inherit it.
use_default_cpu_threads()
