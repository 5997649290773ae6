"""Small dense linear solves (the 9×9 systems of the dynamics).

`jnp.linalg.solve` (LAPACK on CPU) unless `loop_kernels.enabled()`: then Gaussian elimination
with partial pivoting, as LAPACK's `getrf`/`getrs`, unrolled over the columns of a matrix whose
size is known when tracing, because a loop holding a library call cannot become one kernel
(see `loop_kernels`). Both give the same numbers to round-off (the same pivots and
eliminations).
"""

from __future__ import annotations

import jax.numpy as jnp

from l2run.engines.jax import loop_kernels


def solve(matrix: jnp.ndarray, rhs: jnp.ndarray) -> jnp.ndarray:
    """x with `matrix @ x = rhs`; matrix (n, n), rhs (n,) or (n, k)."""
    if not loop_kernels.enabled():
        return jnp.linalg.solve(matrix, rhs)
    return eliminate(matrix, rhs)


def eliminate(matrix: jnp.ndarray, rhs: jnp.ndarray) -> jnp.ndarray:
    """x with `matrix @ x = rhs` by unrolled Gaussian elimination with partial pivoting."""
    n = matrix.shape[0]
    vector = rhs.ndim == 1
    a = matrix
    b = rhs[:, None] if vector else rhs
    # The right-hand side swaps and eliminates with the matrix row by row, kept beside it
    # rather than joined to it: a joined (n, n + k) array is a concatenation whose fused
    # producers XLA's CPU backend evaluates element by element (benchmarks/RESULTS.md,
    # 2026-12-04 session 34); the arithmetic and its order are the same.
    rows = jnp.arange(n)
    for k in range(n):
        # pivot: the largest |a[i, k]| among rows i >= k (the first one on ties, as LAPACK)
        magnitude = jnp.where(rows >= k, jnp.abs(a[:, k]), -1.0)
        p = jnp.argmax(magnitude)
        is_k, is_p = (rows == k)[:, None], (rows == p)[:, None]
        a = jnp.where(is_k, a[p], jnp.where(is_p, a[k], a))
        b = jnp.where(is_k, b[p], jnp.where(is_p, b[k], b))
        factor = jnp.where(rows > k, a[:, k] / a[k, k], 0.0)
        a = a - factor[:, None] * a[k][None, :]
        b = b - factor[:, None] * b[k][None, :]
    x = jnp.zeros_like(b)
    for k in range(n - 1, -1, -1):  # rows below k are solved; x is still 0 from row k up
        x_k = (b[k] - a[k] @ x) / a[k, k]
        x = jnp.where((rows == k)[:, None], x_k[None, :], x)
    return x[:, 0] if vector else x
