"""`linear_solve.solve` equals LAPACK's solve (NumPy) to round-off, pivoting included."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from l2run.engines.jax.linear_solve import eliminate as solve

N_MATRICES = 50
SIZE = 9  # the dynamics' generalized coordinates


def _relative_error(got: np.ndarray, want: np.ndarray) -> float:
    return float(np.max(np.abs(got - want)) / np.max(np.abs(want)))


def test_random_systems_match_lapack() -> None:
    rng = np.random.default_rng(3)
    jitted = jax.jit(solve)
    for _ in range(N_MATRICES):
        a = rng.normal(size=(SIZE, SIZE))
        b = rng.normal(size=SIZE)
        got = np.asarray(jitted(jnp.asarray(a), jnp.asarray(b)))
        assert _relative_error(got, np.linalg.solve(a, b)) < 1e-10
        np.testing.assert_allclose(a @ got, b, atol=1e-10)


def test_zero_leading_pivots_need_row_exchanges() -> None:
    """Without pivoting, a zero on the diagonal divides by zero; with it the answer is exact."""
    rng = np.random.default_rng(4)
    perm = rng.permutation(SIZE)
    a = np.eye(SIZE)[perm] * np.arange(1.0, SIZE + 1)[:, None]  # a scaled permutation
    assert np.any(np.diag(a) == 0.0)
    b = rng.normal(size=SIZE)
    got = np.asarray(solve(jnp.asarray(a), jnp.asarray(b)))
    np.testing.assert_allclose(got, np.linalg.solve(a, b), rtol=1e-14)


def test_several_right_hand_sides_and_float32() -> None:
    rng = np.random.default_rng(5)
    a = rng.normal(size=(SIZE, SIZE)) + 3.0 * np.eye(SIZE)
    b = rng.normal(size=(SIZE, 4))
    np.testing.assert_allclose(
        np.asarray(solve(jnp.asarray(a), jnp.asarray(b))), np.linalg.solve(a, b), rtol=1e-10
    )
    got32 = solve(jnp.asarray(a, jnp.float32), jnp.asarray(b[:, 0], jnp.float32))
    assert got32.dtype == jnp.float32
    assert _relative_error(np.asarray(got32), np.linalg.solve(a, b[:, 0])) < 1e-5


@pytest.mark.parametrize("batch", [1, 7])
def test_vmapped_solves_equal_single_ones(batch: int) -> None:
    rng = np.random.default_rng(6)
    a = rng.normal(size=(batch, SIZE, SIZE))
    b = rng.normal(size=(batch, SIZE))
    batched = np.asarray(jax.vmap(solve)(jnp.asarray(a), jnp.asarray(b)))
    for k in range(batch):
        np.testing.assert_allclose(batched[k], np.linalg.solve(a[k], b[k]), rtol=1e-9)
