"""Physics engines behind `RunEnv`, chosen by name.

`make_engine("opensim")` is the reference (OpenSim 4.6); `make_engine("jax")` the fast engine.
Both are imported lazily so that `import l2run` never loads OpenSim or JAX.
"""

from __future__ import annotations

from typing import Any

from l2run.engines.base import Engine, IntegratorError

ENGINE_NAMES = ("opensim", "jax")

__all__ = ["ENGINE_NAMES", "Engine", "IntegratorError", "make_engine"]


def make_engine(name: str, **kwargs: Any) -> Engine:
    """Build the engine called `name` ("opensim" or "jax") with its keyword options."""
    if name == "opensim":
        from l2run.engines.opensim_engine import OpenSimEngine

        return OpenSimEngine(**kwargs)
    if name == "jax":
        from l2run.engines.jax.engine import JaxEngine

        return JaxEngine(**kwargs)
    raise ValueError(f"engine must be one of {ENGINE_NAMES}, got {name!r}")
