"""`linear_solve`: `eliminate` equals LAPACK's solve (NumPy) to round-off, pivoting included;
`solve_structured` equals it on matrices zero outside a fixed pattern."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from l2run.engines.jax.linear_solve import eliminate as solve
from l2run.engines.jax.linear_solve import elimination_order, solve_structured

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


def _legs_and_pelvis() -> np.ndarray:
    """The dynamics' pattern: pelvis (0-2) meeting everything, two legs (3-5, 6-8) apart."""
    pattern = np.zeros((SIZE, SIZE), dtype=bool)
    for leg in ([0, 1, 2, 3, 4, 5], [0, 1, 2, 6, 7, 8]):
        pattern[np.ix_(leg, leg)] = True
    return pattern


def _diagonally_heavy(rng: np.random.Generator, pattern: np.ndarray, k: int | None = None):
    """A nonsymmetric matrix on `pattern` whose pivots need no row exchanges, and a rhs."""
    a = rng.normal(size=pattern.shape) * pattern + 2.0 * pattern.shape[0] * np.eye(len(pattern))
    b = rng.normal(size=(len(pattern),) if k is None else (len(pattern), k))
    return a, b


def test_elimination_order_takes_a_leg_first_without_fill_in() -> None:
    pattern = _legs_and_pelvis()
    order, filled = elimination_order(pattern)
    assert sorted(order.tolist()) == list(range(SIZE))
    assert set(order[:3].tolist()) in ({3, 4, 5}, {6, 7, 8})  # a whole leg before the pelvis
    np.testing.assert_array_equal(filled, pattern)  # nothing filled in


def test_elimination_order_fills_in_a_cycle() -> None:
    """On a cycle 0-1-2-3-0 eliminating any node joins its two neighbours: the filled pattern
    holds the pattern and the new edge, and the solve on it is exact."""
    pattern = np.eye(4, dtype=bool)
    for i in range(4):
        pattern[i, (i + 1) % 4] = pattern[(i + 1) % 4, i] = True
    _, filled = elimination_order(pattern)
    assert np.all(filled[pattern]) and filled.sum() == pattern.sum() + 2
    a, b = _diagonally_heavy(np.random.default_rng(8), pattern)
    np.testing.assert_allclose(solve_structured(a, b, pattern), np.linalg.solve(a, b), rtol=1e-12)


@pytest.mark.parametrize("k", [None, 3])
def test_structured_solves_match_lapack(k: int | None) -> None:
    rng = np.random.default_rng(9)
    pattern = _legs_and_pelvis()
    jitted = jax.jit(lambda a, b: solve_structured(a, b, pattern))
    for _ in range(N_MATRICES):
        a, b = _diagonally_heavy(rng, pattern, k)
        got = np.asarray(jitted(jnp.asarray(a), jnp.asarray(b)))
        assert got.shape == b.shape
        assert _relative_error(got, np.linalg.solve(a, b)) < 1e-12


def test_structured_solve_ignores_entries_outside_its_pattern_and_keeps_float32() -> None:
    rng = np.random.default_rng(10)
    pattern = _legs_and_pelvis()
    a, b = _diagonally_heavy(rng, pattern)
    noisy = a + 1e3 * ~pattern  # never read
    got = solve_structured(jnp.asarray(noisy), jnp.asarray(b), pattern)
    np.testing.assert_allclose(got, np.linalg.solve(a, b), rtol=1e-12)
    got32 = solve_structured(jnp.asarray(a, jnp.float32), jnp.asarray(b, jnp.float32), pattern)
    assert got32.dtype == jnp.float32
    assert _relative_error(np.asarray(got32), np.linalg.solve(a, b)) < 1e-5


def test_structured_solve_rejects_mismatched_shapes() -> None:
    pattern = _legs_and_pelvis()
    with pytest.raises(ValueError, match="do not match"):
        solve_structured(jnp.eye(8), jnp.ones(8), pattern)
    with pytest.raises(ValueError, match="square"):
        elimination_order(np.ones((2, 3), dtype=bool))
