"""A persistent XLA compilation cache for the engine's programs, on unless turned off.

The engine's programs take long to compile on a CPU: one runner's step ~10-20 s, a batched
step with its graded first-step redos (what `make_vec(..., engine="jax")` runs) a minute or
more. JAX can
keep compiled programs on disk and read them back in later processes (its persistent
compilation cache, keyed by the program, the JAX/XLA versions, the compile options and
`XLA_FLAGS`), so importing the engine points that cache at a folder of ours: a program is
compiled once per machine instead of once per process (a vector env's first step at N = 64:
85 s in a fresh process with an empty cache, 11 s with a warm one, which still traces).

`L2RUN_XLA_CACHE` chooses: unset, `$XDG_CACHE_HOME/l2run/xla` (`~/.cache/l2run/xla`); a path,
that folder; `0` / `off`, no cache. A cache folder the user gave JAX already (the
`jax_compilation_cache_dir` option or `JAX_COMPILATION_CACHE_DIR`) is left as it is.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import jax

CACHE_ENV = "L2RUN_XLA_CACHE"
OFF = ("0", "off", "false", "no")


def default_cache_dir() -> Path:
    """`$XDG_CACHE_HOME/l2run/xla`, or `~/.cache/l2run/xla` without it."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "l2run" / "xla"


def use_compilation_cache() -> Path | None:
    """Point JAX's persistent compilation cache at the folder `L2RUN_XLA_CACHE` chooses (made
    if missing) and return it; None when turned off, when JAX already has a cache folder, or
    when the folder cannot be made (a warning: programs then compile in every process)."""
    setting = os.environ.get(CACHE_ENV, "").strip()
    if setting.lower() in OFF or jax.config.jax_compilation_cache_dir:
        return None
    folder = Path(setting).expanduser() if setting else default_cache_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        warnings.warn(
            f"no XLA compilation cache: cannot make {folder} ({exc.strerror or exc}); set "
            f"{CACHE_ENV} to a writable folder, or to 0 to silence this",
            RuntimeWarning,
            stacklevel=2,
        )
        return None
    jax.config.update("jax_compilation_cache_dir", str(folder))
    return folder
