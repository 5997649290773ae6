"""Share XLA compilations between the JAX engine tests (and their subprocesses)."""

from __future__ import annotations

import os
from pathlib import Path

import jax

# Compiling `step` takes ~1 min on a busy 2-core machine; the persistent cache makes every
# later compilation of the same program (other test files, subprocesses) a file read.
CACHE_DIR = Path(__file__).resolve().parents[3] / ".pytest_cache" / "jax_compilation"
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", str(CACHE_DIR))
jax.config.update("jax_compilation_cache_dir", os.environ["JAX_COMPILATION_CACHE_DIR"])
jax.config.update("jax_persistent_cache_min_compile_time_secs", 1.0)
