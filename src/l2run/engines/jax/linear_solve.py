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
    b = rhs[:, None] if vector else rhs
    a = jnp.concatenate([matrix, b], axis=1)  # rows swap and eliminate together
    rows = jnp.arange(n)
    for k in range(n):
        # pivot: the largest |a[i, k]| among rows i >= k (the first one on ties, as LAPACK)
        magnitude = jnp.where(rows >= k, jnp.abs(a[:, k]), -1.0)
        p = jnp.argmax(magnitude)
        row_k, row_p = a[k], a[p]
        a = jnp.where((rows == k)[:, None], row_p, jnp.where((rows == p)[:, None], row_k, a))
        factor = jnp.where(rows > k, a[:, k] / a[k, k], 0.0)
        a = a - factor[:, None] * a[k][None, :]
    u, y = a[:, :n], a[:, n:]
    x = jnp.zeros_like(y)
    for k in range(n - 1, -1, -1):  # rows below k are solved; x is still 0 from row k up
        x_k = (y[k] - u[k] @ x) / u[k, k]
        x = jnp.where((rows == k)[:, None], x_k[None, :], x)
    return x[:, 0] if vector else x
