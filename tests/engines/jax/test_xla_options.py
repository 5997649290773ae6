"""`engine_jit`: the engine's programs compile with its CPU options, and compute the same."""

from __future__ import annotations

import re
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from l2run.engines.jax import loop_kernels, xla_options
from l2run.engines.jax.xla_options import CPU_COMPILE_OPTIONS, compile_options, engine_jit


def _small_dynamics(a: jnp.ndarray, b: jnp.ndarray, scale: float = 1.0) -> jnp.ndarray:
    """A batched product and elementwise ops, the kind XLA hands to YNNPACK by default."""
    return scale * jnp.tanh(a @ b) + 1.0


@pytest.fixture
def operands() -> tuple[jnp.ndarray, jnp.ndarray]:
    rng = np.random.default_rng(0)
    return jnp.asarray(rng.normal(size=(64, 18))), jnp.asarray(rng.normal(size=(18, 9)))


def test_options_are_for_cpu_only() -> None:
    assert compile_options("cpu") == CPU_COMPILE_OPTIONS
    assert compile_options("gpu") == {} and compile_options("tpu") == {}


@pytest.mark.skipif(jax.default_backend() != "cpu", reason="the options are CPU-only")
def test_engine_programs_compile_without_library_fusions(operands) -> None:
    def library_fusions(compiled_text: str) -> int:
        return len(re.findall(r"\bynn_fusion(\.\d+)? = ", compiled_text))

    plain = jax.jit(_small_dynamics).lower(*operands).compile().as_text()
    engine = engine_jit(_small_dynamics).lower(*operands).compile().as_text()
    assert library_fusions(plain) > 0  # what XLA does by default, which the option turns off
    assert library_fusions(engine) == 0


def test_same_numbers_and_static_arguments(operands) -> None:
    jitted = engine_jit(static_argnames=("scale",))(_small_dynamics)
    expected = _small_dynamics(*operands, scale=2.0)
    np.testing.assert_allclose(jitted(*operands, scale=2.0), expected, rtol=1e-12)
    assert jitted.__doc__ == _small_dynamics.__doc__
    assert partial(engine_jit)(_small_dynamics)(*operands).shape == (64, 9)


@pytest.mark.parametrize("private_api", [True, False])
def test_inside_another_program_it_is_a_plain_nested_jit(operands, monkeypatch, private_api):
    if not private_api:  # the fallback: arguments scanned for tracers
        monkeypatch.setattr(xla_options, "_trace_state_clean", None)
    inner = engine_jit(_small_dynamics)
    outer = engine_jit(lambda a, b: inner(a, b).sum())  # options on the outer program only
    np.testing.assert_allclose(outer(*operands), _small_dynamics(*operands).sum(), rtol=1e-12)
    grad = jax.grad(lambda a, b: inner(a, b).sum())(*operands)  # traced without a jit around
    assert grad.shape == operands[0].shape and bool(jnp.all(jnp.isfinite(grad)))
    assert not xla_options._inside_trace(operands, {})


@pytest.mark.skipif(jax.default_backend() != "cpu", reason="a CPU-only wrapper")
def test_one_kernel_programs_run_once_inside_a_loop(operands, monkeypatch) -> None:
    """`engine_jit(one_kernel=True)`: a top-level call traces the function inside a one-trip
    while loop (its arguments and trip count behind optimization barriers), with the same
    numbers and static arguments; nested in another trace (here reverse mode, which a while
    loop would refuse) the function is traced as it is."""
    monkeypatch.setattr(loop_kernels, "single_kernel_loops_pay", lambda: True)
    wrapped = engine_jit(static_argnames=("scale",), one_kernel=True)(_small_dynamics)
    plain = engine_jit(static_argnames=("scale",))(_small_dynamics)
    np.testing.assert_allclose(
        wrapped(*operands, scale=2.0), plain(*operands, scale=2.0), rtol=1e-12, atol=1e-12
    )
    assert " while(" in wrapped.lower(*operands, scale=2.0).compile().as_text()
    assert " while(" not in plain.lower(*operands, scale=2.0).compile().as_text()
    grads = [
        jax.grad(lambda a, f=f: f(a, operands[1]).sum())(operands[0]) for f in (wrapped, plain)
    ]
    np.testing.assert_allclose(grads[0], grads[1], rtol=1e-12)
    # without the loop-size threshold (or on another backend) nothing is wrapped
    monkeypatch.setattr(loop_kernels, "single_kernel_loops_pay", lambda: False)
    unwrapped = engine_jit(one_kernel=True)(_small_dynamics)
    assert " while(" not in unwrapped.lower(*operands).compile().as_text()


def test_an_xla_that_rejects_the_options_compiles_without_them(operands, monkeypatch) -> None:
    known = next(iter(CPU_COMPILE_OPTIONS.items()))
    options = {"xla_cpu_no_such_option": "", known[0]: known[1]}
    monkeypatch.setattr(xla_options, "CPU_COMPILE_OPTIONS", options)
    xla_options._accepted_cpu_options.cache_clear()
    try:
        assert compile_options("cpu") == dict([known])  # the unknown one alone is left out
        # (values of order 1, some cancelling to ~1e-6: round-off of other fusions, absolute)
        np.testing.assert_allclose(
            engine_jit(_small_dynamics)(*operands), _small_dynamics(*operands), atol=1e-13
        )
    finally:
        monkeypatch.undo()
        xla_options._accepted_cpu_options.cache_clear()
