"""Whether the programs being traced write their loops for one-kernel compilation on CPU.

XLA's CPU runtime runs a program operation by operation ("thunks"), each a separate small
kernel launch of ~0.5 µs; one runner's `imex_stiff` substep is ~300 of them, so a single
runner is bound by launches, not arithmetic. XLA compiles a while loop into one kernel instead
when its body holds no scatter and no library call (LAPACK) and the loop accesses fewer bytes
than a threshold (`SMALL_LOOP_BYTES`, which importing `l2run.engines.jax` sets): then one
runner's steps took 1.3-1.6x less time (benchmarks/RESULTS.md, 2026-12-04), and the CPU
batch's chunks of runners 1.03-1.14x less (2026-12-05).

So the engine has two spellings of its 9×9 solves (`linear_solve`) and of indexed writes at
traced indices (`indexed_writes`): LAPACK and scatters, which are cheapest when many runners are
batched (one batched solve or scatter for all of them), and an unrolled elimination and masks,
which let one runner's loops become single kernels. Both give the same numbers to round-off.
(The model's own writes have their indices fixed while tracing, `static.Static`, and are
gathers at constant positions in either case.)
The choice is made while tracing: `step.step(..., single_kernel_loops=...)` sets it for the
program it traces (its jit cache key includes it), batched entry points pass False.
`as_one_kernel` goes one level up: it puts a whole program inside such a loop, so that nothing
is launched outside it (`xla_options.engine_jit(..., one_kernel=True)`: `JaxEngine`'s step).
"""

from __future__ import annotations

import contextlib
import contextvars
import os
from collections.abc import Callable, Iterator
from typing import Any

import jax  # importing JAX does not start it: the flags are read when its CPU client starts
import jax.numpy as jnp

from l2run.engines.cpu_threads import jax_backend_started

# Measured by the loops each threshold takes: one runner's substep loops access 0.1-1 MB (at
# 0.1 MB half of them became kernels, at 1 MB all); the runners-last batch's loop over a chunk's
# substeps (64 float64 or 128 float32 runners: `rollout.runner_chunk`) 3e7-1e8 bytes as XLA's
# cost analysis counts them, and as one kernel it ran 1.14x (float64) and 1.03-1.05x (float32)
# faster, same numbers to the bit, for ~6-10 s more compile time per batched program
# (benchmarks/RESULTS.md, 2026-12-05 session 36). So the threshold takes them all. A
# single-runner rollout's outer `lax.scan` (1-10 MB) would go in too, no faster (1.01x) for
# ~11-18 s more compile time, so `rollout.rollout` keeps it out (a loop holding a sort, a scatter
# or a library call never becomes a kernel); a batched rollout's scan over steps holds the
# first-step redo's scatters. XLA's default is 1 kB.
SMALL_LOOP_BYTES = 1_000_000_000
SMALL_LOOP_OPTION = "xla_cpu_small_while_loop_byte_threshold"
# Read once, when JAX creates its CPU client; no per-program compile option reaches this map.
XLA_FLAGS_ENV = "XLA_FLAGS"
EXTRA_OPTIONS_FLAG = "--xla_backend_extra_options"

# Whether the threshold is in the flags JAX's CPU client was (or will be) created with, as
# `request_small_loop_threshold` found it when the engine was imported.
_in_force = False

_ENABLED: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "single_kernel_loops", default=False
)


def enabled() -> bool:
    """Whether the code traced now should avoid scatters and library calls."""
    return _ENABLED.get()


@contextlib.contextmanager
def single_kernel_loops(on: bool = True) -> Iterator[None]:
    """Trace the code inside with (or without) one-kernel-friendly spellings."""
    token = _ENABLED.set(bool(on))
    try:
        yield
    finally:
        _ENABLED.reset(token)


def request_small_loop_threshold() -> bool:
    """Put `SMALL_LOOP_BYTES` into `XLA_FLAGS` for the CPU client JAX has yet to create.

    Leaves a threshold the user set alone, merges with other backend extra options, and
    changes nothing once JAX has started (the client reads the flags only then). Returns
    whether a threshold (ours or the user's) is in the flags JAX will use."""
    global _in_force
    tokens = os.environ.get(XLA_FLAGS_ENV, "").split()
    _in_force = any(SMALL_LOOP_OPTION in token for token in tokens)
    if _in_force or jax_backend_started():
        return _in_force
    ours = f"{SMALL_LOOP_OPTION}={SMALL_LOOP_BYTES}"
    for i, token in enumerate(tokens):
        if token.startswith(EXTRA_OPTIONS_FLAG + "="):
            tokens[i] = f"{token},{ours}"
            break
    else:
        tokens.append(f"{EXTRA_OPTIONS_FLAG}={ours}")
    os.environ[XLA_FLAGS_ENV] = " ".join(tokens)
    _in_force = True
    return True


def as_one_kernel(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """`fn(*args, **kwargs)` traced as the body of a while loop that runs once, so that XLA's
    CPU backend can compile a whole program into one kernel (inside a jit; arguments that are
    not traced values pass through as they are).

    Left to itself, a program's operations outside its loops are each a kernel launch: one
    runner's control step has ~250 of them (the observation, the packing, everything computed
    from the parameters) around its substep loop, ~20 % of its time (benchmarks/RESULTS.md,
    2026-12-05 session 40). A loop that runs once would be removed by XLA's loop simplifier,
    and a body that does not depend on the loop would be hoisted out of it, so the trip count
    and the arguments pass through optimization barriers: values neither XLA pass can see
    through, which compute nothing (the same bits). Forward mode only: a while loop has no
    reverse-mode derivative."""
    leaves, treedef = jax.tree.flatten((args, kwargs))
    traced = [i for i, leaf in enumerate(leaves) if isinstance(leaf, jax.core.Tracer)]

    def call(values: list[Any]) -> Any:
        filled = list(leaves)
        for i, value in zip(traced, values, strict=True):
            filled[i] = value
        call_args, call_kwargs = jax.tree.unflatten(treedef, filled)
        return fn(*call_args, **call_kwargs)

    values = [leaves[i] for i in traced]
    shapes = jax.eval_shape(call, values)
    once = jax.lax.optimization_barrier(jnp.ones((), jnp.int32))

    def body(carry: tuple[jnp.ndarray, Any]) -> tuple[jnp.ndarray, Any]:
        count, inputs = jax.lax.optimization_barrier((carry[0], values))
        return count + 1, call(inputs)

    start = (jnp.zeros((), jnp.int32), jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shapes))
    return jax.lax.while_loop(lambda carry: carry[0] < once, body, start)[1]


def single_kernel_loops_pay() -> bool:
    """The default spelling of one runner's step: single-kernel loops on a CPU backend whose
    client has the threshold (without it, the masks and the unrolled solve only cost more)."""
    return _in_force and jax.default_backend() == "cpu"
