"""Small dense linear solves (the 9×9 systems of the dynamics).

`jnp.linalg.solve` (LAPACK on CPU) unless `loop_kernels.enabled()`: then Gaussian elimination
with partial pivoting, as LAPACK's `getrf`/`getrs`, unrolled over the columns of a matrix whose
size is known when tracing, because a loop holding a library call cannot become one kernel
(see `loop_kernels`). Both give the same numbers to round-off (the same pivots and
eliminations).

`solve_structured`: for a matrix that is zero outside a pattern fixed while tracing (the stiff
substep's, `system.stiff_matrix_pattern`), elimination without row exchanges on the pattern's
entries only, unrolled in every spelling.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

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


def elimination_order(pattern: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A greedy minimum-degree elimination order of a matrix whose nonzeros lie in `pattern`
    (n, n) bool, fixed while tracing, and the pattern filled in by eliminating in that order
    (symmetrised, diagonal included). For the dynamics' 9×9 systems (each leg coupled only to
    itself and the pelvis) a leg goes first, a coordinate at a time, and nothing fills in."""
    pattern = np.asarray(pattern, dtype=bool)
    n = pattern.shape[0]
    if pattern.shape != (n, n):
        raise ValueError(f"pattern must be square, got {pattern.shape}")
    filled = pattern | pattern.T | np.eye(n, dtype=bool)
    remaining = list(range(n))
    order = []
    while remaining:
        k = min(remaining, key=lambda i: (np.count_nonzero(filled[i, remaining]), i))
        remaining.remove(k)
        neighbours = [j for j in remaining if filled[k, j]]
        filled[np.ix_(neighbours, neighbours)] = True
        order.append(k)
    return np.asarray(order), filled


def solve_structured(matrix: jnp.ndarray, rhs: jnp.ndarray, pattern: np.ndarray) -> jnp.ndarray:
    """x with `matrix @ x = rhs` for a matrix (n, n) that is zero outside `pattern` (fixed
    while tracing; entries outside it are not read); rhs (n,) or (n, k). Gaussian elimination
    without row exchanges, in `elimination_order`, on the entries of the filled pattern only,
    one traced scalar per entry (batched: one row of runners each).

    No row exchanges: the stiff substep's matrix M + h²K_muscles − h²K − hD is the positive
    definite mass matrix plus stiffness and damping terms that are positive semidefinite up
    to their small friction and lever parts, so its pivots stay well away from zero. For the
    9×9 systems this is about a tenth of `eliminate`'s arithmetic (whose masked row
    operations touch every entry for every column)."""
    order, filled = elimination_order(pattern)
    n = filled.shape[0]
    if matrix.shape != (n, n) or rhs.shape[0] != n:
        raise ValueError(f"matrix {matrix.shape} and rhs {rhs.shape} do not match ({n}, {n})")
    a = {(int(i), int(j)): matrix[i, j] for i, j in zip(*np.nonzero(filled), strict=True)}
    b = [rhs[i] for i in range(n)]
    position = np.argsort(order)  # when each coordinate is eliminated
    # per k, the coordinates eliminated after it that k meets (the filled pattern is
    # symmetric: k's rows below it are its columns after it)
    later = {k: np.flatnonzero(filled[k] & (position > position[k])).tolist() for k in range(n)}
    inverse_pivot: dict[int, jnp.ndarray] = {}
    for k in order.tolist():
        inverse_pivot[k] = 1.0 / a[k, k]
        for i in later[k]:
            factor = a[i, k] * inverse_pivot[k]
            for j in later[k]:
                a[i, j] = a[i, j] - factor * a[k, j]
            b[i] = b[i] - factor * b[k]
    x: dict[int, jnp.ndarray] = {}
    for k in reversed(order.tolist()):
        value = b[k]
        for j in later[k]:
            value = value - a[k, j] * x[j]
        x[k] = value * inverse_pivot[k]
    return jnp.stack([x[k] for k in range(n)])
