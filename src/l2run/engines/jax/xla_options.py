"""`engine_jit`: `jax.jit` with the XLA compile options the engine's programs run fastest with.

XLA's CPU backend hands groups of small products and elementwise ops to the YNNPACK library
("ynn fusions"). For this model's arrays (a few to a few hundred numbers per runner) the library
call costs more than XLA's own loops: with them turned off, one vmapped `imex_stiff` substep
took 1.17-1.23x less CPU per runner at N = 64 and 256, and 1.05x for one runner (same numbers
to 3e-14; benchmarks/RESULTS.md, 2026-12-02, "No YNNPACK fusions"). Other options let LLVM
use 512-bit vectors and pick XLA's older fusion emitter (see `CPU_COMPILE_OPTIONS`). The
options are CPU-only, so other backends compile without them, and an XLA that does not know
one (older or newer jaxlib) compiles without that one.
Only the outermost jit's options count, so every jitted entry point of the engine (and the
trainers' programs that call it) uses `engine_jit`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from l2run.engines.jax import loop_kernels

CPU_COMPILE_OPTIONS: dict[str, Any] = {
    "xla_cpu_experimental_ynn_fusion_type": "",
    # Let LLVM use 512-bit vectors where the CPU has them (AVX-512; elsewhere it keeps the
    # widest it has): the runners-last batch's inner loops run over 64 runners, 1.05-1.10x
    # (float64) and 1.04-1.06x (float32) less CPU per runner on an AVX-512 Xeon, one runner's
    # rollout 1.02x, bit-identical numbers (benchmarks/RESULTS.md, 2026-12-04 session 34).
    "xla_cpu_prefer_vector_width": 512,
    # Compile fused elementwise kernels with XLA's older LLVM emitter rather than its MLIR
    # "fusion emitters": for this model's fusions (long chains of elementwise ops, gathers and
    # concatenations at fixed positions) a batched step ran 1.12x (float32) and 1.04x (float64)
    # faster, `RunEnv.step` 1.06x, one runner's rollout 1.02x, bit-identical numbers, compile
    # no slower (benchmarks/RESULTS.md, 2026-12-05 session 36).
    "xla_cpu_use_fusion_emitters": False,
}

try:  # ~0.5 µs per call, against ~25 µs for scanning a step's ~90 argument leaves for tracers
    from jax._src.core import trace_state_clean as _trace_state_clean
except ImportError:  # pragma: no cover - a JAX without it: scan the arguments
    _trace_state_clean = None


def computed_once(x: jnp.ndarray) -> jnp.ndarray:
    """x as it is, but computed in one kernel and stored: XLA's CPU fusion copies cheap ops
    (sines, products, sums) into each consumer and recomputes them once per element the
    consumer reads, while a division counts as expensive and is computed once. So x is divided
    by an exact 1 that XLA cannot fold (1 + 0·x: it keeps 0·x for floats; NaN where x is ±inf).
    The same bits for finite x; integers come back as they are."""
    if not jnp.issubdtype(x.dtype, jnp.floating):
        return x
    return x / (1.0 + 0.0 * x)


def _inside_trace(args: tuple, kwargs: dict[str, Any]) -> bool:
    """Whether this call happens while JAX traces another program (jit, vmap, grad, scan)."""
    if _trace_state_clean is not None:
        return not _trace_state_clean()
    return any(isinstance(leaf, jax.core.Tracer) for leaf in jax.tree.leaves((args, kwargs)))


@functools.cache
def _accepted_cpu_options() -> dict[str, Any]:
    """The `CPU_COMPILE_OPTIONS` this XLA accepts, each probed alone (XLA rejects an option
    name it does not know, and a JAX before 0.4.36 has no `compiler_options` argument to
    `jax.jit` at all): an option a future XLA drops costs only its own effect."""
    accepted = {}
    for name, value in CPU_COMPILE_OPTIONS.items():
        try:
            probe = jax.jit(lambda x: x + 1, compiler_options={name: value})
            probe.lower(1.0).compile()
        except Exception:  # noqa: BLE001 - any refusal means "compile without it"
            continue
        accepted[name] = value
    return accepted


def compile_options(backend: str | None = None) -> dict[str, Any]:
    """The options for programs compiled for `backend` (default: JAX's default backend)."""
    backend = jax.default_backend() if backend is None else backend
    if backend == "cpu":
        return dict(_accepted_cpu_options())
    return {}


class _EngineJit:
    """A jitted function compiled with `compile_options()` of the backend at first use."""

    def __init__(
        self, fun: Callable[..., Any], jit_kwargs: dict[str, Any], one_kernel: bool = False
    ) -> None:
        self._fun, self._jit_kwargs, self._one_kernel = fun, jit_kwargs, one_kernel
        self._jitted: dict[str, Any] = {}
        functools.update_wrapper(self, fun)

    def _for_backend(self, args: tuple, kwargs: dict[str, Any]) -> Any:
        # Called while another program is traced, this is a nested jit, which takes no
        # options: the outermost program's apply.
        if _inside_trace(args, kwargs):
            backend = "nested"
        else:
            backend = jax.default_backend()
        jitted = self._jitted.get(backend)
        if jitted is None:
            options = {} if backend == "nested" else compile_options(backend)
            # Without options the plain call, which every JAX the package allows accepts.
            extra = {"compiler_options": options} if options else {}
            fun = self._fun
            if self._one_kernel and backend == "cpu" and loop_kernels.single_kernel_loops_pay():
                fun = functools.wraps(fun)(functools.partial(loop_kernels.as_one_kernel, fun))
            jitted = jax.jit(fun, **extra, **self._jit_kwargs)
            self._jitted[backend] = jitted
        return jitted

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._for_backend(args, kwargs)(*args, **kwargs)

    def lower(self, *args: Any, **kwargs: Any) -> Any:
        return self._for_backend(args, kwargs).lower(*args, **kwargs)


def engine_jit(
    fun: Callable[..., Any] | None = None, *, one_kernel: bool = False, **jit_kwargs: Any
) -> Any:
    """`jax.jit(fun, **jit_kwargs)` with `compile_options()`; usable as `@engine_jit` or
    `@engine_jit(static_argnames=...)`. `one_kernel`: called outside any trace on a CPU
    backend with the loop-size threshold (`loop_kernels.single_kernel_loops_pay`), the
    program is traced inside `loop_kernels.as_one_kernel` (for one runner's step: its
    operations outside the substep loops were ~20 % of its time); nested in another program,
    or under a transformation, `fun` is traced as it is (reverse mode included)."""
    if fun is None:
        return functools.partial(engine_jit, one_kernel=one_kernel, **jit_kwargs)
    return _EngineJit(fun, jit_kwargs, one_kernel)
