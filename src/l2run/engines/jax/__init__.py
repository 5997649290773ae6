"""The JAX engine: the OpenSim model's equations as pure, jit/vmap/grad-able functions.

Importing this package switches JAX to 64-bit floats (parity with OpenSim needs float64);
the float32 mode casts parameters and state explicitly (see `step.as_dtype`). Imported before
JAX's first computation, it also lets XLA's CPU backend compile one runner's substep loops
into single kernels (`loop_kernels.request_small_loop_threshold`, via `XLA_FLAGS`). Compiled
programs are kept on disk for later processes (`compile_cache`; `L2RUN_XLA_CACHE=0` turns that
off).
"""

from __future__ import annotations

import jax

from l2run.engines.jax.compile_cache import use_compilation_cache
from l2run.engines.jax.loop_kernels import request_small_loop_threshold

jax.config.update("jax_enable_x64", True)
request_small_loop_threshold()
use_compilation_cache()
