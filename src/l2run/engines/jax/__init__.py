"""The JAX engine: the OpenSim model's equations as pure, jit/vmap/grad-able functions.

Importing this package switches JAX to 64-bit floats (parity with OpenSim needs float64);
the float32 mode casts parameters and state explicitly (see `step.as_dtype`).
"""

from __future__ import annotations

import jax

jax.config.update("jax_enable_x64", True)
