"""How many CPU threads the JAX engine's programs run on, chosen before JAX starts.

XLA's CPU runtime runs the independent kernels of one program concurrently on a pool with a
thread per usable core. This engine's kernels are tiny (one runner's substep is ~300 of them,
each a few hundred floating-point operations), so handing them between threads costs more
than running them side by side saves: on 2 idle cores, one thread gave the same or better
wall clock at 1.4-2.2x less CPU time, and under load the single-env `lax.scan` rollout ran
1.1-1.9x faster (benchmarks/RESULTS.md, 2026-12-02, fourth session). On CPU, scale with
processes (one thread each, e.g. `l2run evaluate --workers`), not with threads.

The pool is sized once, when JAX creates its CPU client, from the `PJRT_NPROC` environment
variable (else the usable cores), so the choice must come before the first JAX computation.
"""

from __future__ import annotations

import os
import sys

# Read by XLA's PJRT CPU client when it is created (xla/pjrt/cpu/cpu_client.cc).
THREADS_ENV = "PJRT_NPROC"
# What the `l2run` command line, the benchmarks and the tests use unless told otherwise.
DEFAULT_CPU_THREADS = 1


def jax_backend_started() -> bool:
    """Whether JAX has already created a backend (after which the pool size is fixed)."""
    # Looked up, not imported: importing JAX here would slow every command that never uses it.
    xla_bridge = sys.modules.get("jax._src.xla_bridge")
    return xla_bridge is not None and bool(getattr(xla_bridge, "_backends", {}))


def set_cpu_threads(threads: int) -> None:
    """Run every later JAX program of this process on `threads` CPU threads (0: one per usable
    core, XLA's default). Must come before the first JAX computation; child processes started
    afterwards inherit it."""
    if threads < 0:
        raise ValueError(f"threads must be >= 0 (0: one per core), got {threads}")
    value = str(threads) if threads else None
    if os.environ.get(THREADS_ENV) == value:
        return
    if jax_backend_started():
        raise RuntimeError(
            f"JAX's CPU client already exists, so its thread pool can no longer change: set "
            f"{THREADS_ENV}={threads or '<cores>'} in the environment, or call set_cpu_threads "
            f"before the first JAX computation"
        )
    if value is None:
        os.environ.pop(THREADS_ENV, None)
    else:
        os.environ[THREADS_ENV] = value


def use_default_cpu_threads() -> None:
    """`DEFAULT_CPU_THREADS`, unless `PJRT_NPROC` is already set (the user's choice stands) or
    JAX has started (nothing can change any more)."""
    if THREADS_ENV in os.environ or jax_backend_started():
        return
    set_cpu_threads(DEFAULT_CPU_THREADS)


def choose_cpu_threads(threads: int | None) -> None:
    """A `--cpu-threads` option's choice: `set_cpu_threads(threads)`, or with None the default
    (`use_default_cpu_threads`)."""
    if threads is None:
        use_default_cpu_threads()
    else:
        set_cpu_threads(threads)


__all__ = [
    "DEFAULT_CPU_THREADS",
    "THREADS_ENV",
    "choose_cpu_threads",
    "jax_backend_started",
    "set_cpu_threads",
    "use_default_cpu_threads",
]
