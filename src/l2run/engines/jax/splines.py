"""OpenSim's functions of one coordinate — `SimmSpline`, `Constant`, `LinearFunction` — in JAX.

`SimmSpline` is not a textbook natural spline: OpenSim 4.6's `SimmSpline::calcCoefficients`
(the Forsythe–Malcolm–Moler construction) takes the end conditions from third divided
differences when there are more than three knots, and outside the knots it extrapolates
*linearly* with the end slope (second derivative zero there). Within 2e-13 of an end knot it
returns the knot value exactly (`EQUAL_WITHIN_ERROR`). The coefficients are computed once, in
numpy float64, by a line-by-line port of that routine (same operation order, so the same bits);
evaluation is jit/vmap/grad-safe.

Every function becomes a padded row of `SplineParams` (a batch of S functions, N knots max):
a `Constant` is a flat two-knot spline, a `LinearFunction` a straight two-knot spline (exact
everywhere, since SimmSpline extrapolates linearly). Evaluate all of them at once with
`spline_values(params, x)` where `x` holds one argument per function. The value carries a
custom JVP whose tangent is `spline_derivatives` (OpenSim's `calcDerivative` formula, also
outside the knots and at the end knots), so velocities computed by forward-mode AD through a
spline match OpenSim's.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.custom_derivatives import SymbolicZero

from l2run.engines.jax.static import Static, concrete

# OpenSim/Common/SimmMacros.h
TINY_NUMBER = 1e-7  # floor on knot spacing in calcCoefficients
ROUNDOFF_ERROR = 2e-13  # EQUAL_WITHIN_ERROR tolerance at the end knots


class SplineParams(NamedTuple):
    """S functions of one variable as padded cubic pieces (float64 unless cast).

    Piece k of function s is ``y + dx·(b + dx·(c + dx·d))`` with ``dx = t − x[s, k]``.
    Rows are padded past `n[s]` knots by repeating the last knot (never used for a value).
    """

    x: jnp.ndarray  # (S, N) knots, ascending
    y: jnp.ndarray  # (S, N) values at the knots
    b: jnp.ndarray  # (S, N) first-order coefficients
    c: jnp.ndarray  # (S, N) second-order coefficients
    d: jnp.ndarray  # (S, N) third-order coefficients
    n: Static  # (S,) int: number of real knots (>= 2)


# --- construction (numpy, at compile time) ---------------------------------------------------


def simm_spline_coefficients(
    x: Sequence[float], y: Sequence[float]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(b, c, d) exactly as OpenSim 4.6 `SimmSpline::calcCoefficients` computes them."""
    x = [float(v) for v in x]
    y = [float(v) for v in y]
    n = len(x)
    if n < 2 or len(y) != n:
        raise ValueError(f"a SimmSpline needs >= 2 knots and as many y as x; got {n} x, {len(y)} y")
    if any(x1 < x0 for x0, x1 in zip(x, x[1:], strict=False)):
        raise ValueError(f"SimmSpline knots must be ascending, got {x}")
    b, c, d = [0.0] * n, [0.0] * n, [0.0] * n
    if n == 2:
        t = max(TINY_NUMBER, x[1] - x[0])
        b[0] = b[1] = (y[1] - y[0]) / t
        return np.array(b), np.array(c), np.array(d)
    nm1, nm2 = n - 1, n - 2
    # Tridiagonal system: b = diagonal, d = off-diagonal, c = right-hand side.
    d[0] = max(TINY_NUMBER, x[1] - x[0])
    c[1] = (y[1] - y[0]) / d[0]
    for i in range(1, nm1):
        d[i] = max(TINY_NUMBER, x[i + 1] - x[i])
        b[i] = 2.0 * (d[i - 1] + d[i])
        c[i + 1] = (y[i + 1] - y[i]) / d[i]
        c[i] = c[i + 1] - c[i]
    # End conditions: third derivatives at the ends from divided differences.
    b[0] = -d[0]
    b[nm1] = -d[nm2]
    c[0] = 0.0
    c[nm1] = 0.0
    if n > 3:
        d31 = max(TINY_NUMBER, x[3] - x[1])
        d20 = max(TINY_NUMBER, x[2] - x[0])
        d1 = max(TINY_NUMBER, x[nm1] - x[n - 3])
        d2 = max(TINY_NUMBER, x[nm2] - x[n - 4])
        d30 = max(TINY_NUMBER, x[3] - x[0])
        d3 = max(TINY_NUMBER, x[nm1] - x[n - 4])
        c[0] = c[2] / d31 - c[1] / d20
        c[nm1] = c[nm2] / d1 - c[n - 3] / d2
        c[0] = c[0] * d[0] * d[0] / d30
        c[nm1] = -c[nm1] * d[nm2] * d[nm2] / d3
    # Forward elimination.
    for i in range(1, n):
        t = d[i - 1] / b[i - 1]
        b[i] -= t * d[i - 1]
        c[i] -= t * c[i - 1]
    # Back substitution.
    c[nm1] /= b[nm1]
    for j in range(nm1):
        i = nm2 - j
        c[i] = (c[i] - d[i] * c[i + 1]) / b[i]
    # Polynomial coefficients.
    b[nm1] = (y[nm1] - y[nm2]) / d[nm2] + d[nm2] * (c[nm2] + 2.0 * c[nm1])
    for i in range(nm1):
        b[i] = (y[i + 1] - y[i]) / d[i] - d[i] * (c[i + 1] + 2.0 * c[i])
        d[i] = (c[i + 1] - c[i]) / d[i]
        c[i] *= 3.0
    c[nm1] *= 3.0
    d[nm1] = d[nm2]
    return np.array(b), np.array(c), np.array(d)


def function_knots(
    fn: Any,
) -> tuple[list[float], list[float], list[float], list[float], list[float]]:
    """(x, y, b, c, d) of one model function (`SimmSpline`, `Constant`, `LinearFunction`
    dataclass from `l2run.model.definition`, or an (x, y) knot pair meaning a SimmSpline)."""
    kind = getattr(fn, "kind", None)
    if kind == "Constant":
        v = float(fn.value)
        return [0.0, 1.0], [v, v], [0.0, 0.0], [0.0, 0.0], [0.0, 0.0]
    if kind == "LinearFunction":
        slope, intercept = (float(v) for v in fn.coefficients)
        # y + dx*b with x0 = 0 is `intercept + t*slope` on both sides of the knots.
        return [0.0, 1.0], [intercept, intercept + slope], [slope, slope], [0.0, 0.0], [0.0, 0.0]
    if kind == "SimmSpline":
        xs, ys = list(fn.x), list(fn.y)
    elif isinstance(fn, tuple | list) and len(fn) == 2:
        xs, ys = list(fn[0]), list(fn[1])
    else:
        raise ValueError(
            f"unsupported function {fn!r}: expected SimmSpline, Constant, LinearFunction"
        )
    b, c, d = simm_spline_coefficients(xs, ys)
    return [float(v) for v in xs], [float(v) for v in ys], list(b), list(c), list(d)


def compile_splines(functions: Sequence[Any]) -> SplineParams:
    """Pad a list of model functions into one `SplineParams` batch (numpy arrays)."""
    if len(functions) == 0:
        raise ValueError("compile_splines needs at least one function")
    rows = [function_knots(f) for f in functions]
    n_max = max(len(r[0]) for r in rows)

    def pad(values: list[float]) -> list[float]:
        return values + [values[-1]] * (n_max - len(values))

    x, y, b, c, d = (np.array([pad(r[i]) for r in rows], dtype=float) for i in range(5))
    n = np.array([len(r[0]) for r in rows], dtype=np.int32)
    return SplineParams(x=x, y=y, b=b, c=c, d=d, n=Static(n))


# --- evaluation (JAX) ------------------------------------------------------------------------


def _piece(p: SplineParams, t: jnp.ndarray):
    """Index of the cubic piece holding t (per function) and the gathered end data."""
    last = concrete(p.n) - 1
    count = jnp.sum(p.x <= t[:, None], axis=1)
    k = jnp.clip(count - 1, 0, last - 1)

    def at(a: jnp.ndarray, idx: jnp.ndarray) -> jnp.ndarray:
        return jnp.take_along_axis(a, idx[:, None], axis=1)[:, 0]

    return k, last, at


def _values(p: SplineParams, t: jnp.ndarray) -> jnp.ndarray:
    k, last, at = _piece(p, t)
    x0, y0, b0 = p.x[:, 0], p.y[:, 0], p.b[:, 0]
    xn, yn, bn = at(p.x, last), at(p.y, last), at(p.b, last)
    dx = t - at(p.x, k)
    inner = at(p.y, k) + dx * (at(p.b, k) + dx * (at(p.c, k) + dx * at(p.d, k)))
    out = jnp.where(jnp.abs(t - xn) <= ROUNDOFF_ERROR, yn, inner)
    out = jnp.where(jnp.abs(t - x0) <= ROUNDOFF_ERROR, y0, out)
    out = jnp.where(t > xn, yn + (t - xn) * bn, out)
    return jnp.where(t < x0, y0 + (t - x0) * b0, out)


def _derivatives(p: SplineParams, t: jnp.ndarray) -> jnp.ndarray:
    k, last, at = _piece(p, t)
    x0, b0 = p.x[:, 0], p.b[:, 0]
    xn, bn = at(p.x, last), at(p.b, last)
    dx = t - at(p.x, k)
    inner = at(p.b, k) + dx * (2.0 * at(p.c, k) + 3.0 * dx * at(p.d, k))
    out = jnp.where(jnp.abs(t - xn) <= ROUNDOFF_ERROR, bn, inner)
    out = jnp.where(jnp.abs(t - x0) <= ROUNDOFF_ERROR, b0, out)
    return jnp.where((t < x0) | (t > xn), jnp.where(t < x0, b0, bn), out)


def spline_second_derivatives(p: SplineParams, t: jnp.ndarray) -> jnp.ndarray:
    """d²f/dt² of every function at its own argument, as OpenSim's calcDerivative({0,0}):
    zero outside the knots, 2c at the end knots, 2c + 6d·dx inside."""
    t = jnp.asarray(t)
    k, last, at = _piece(p, t)
    x0, c0 = p.x[:, 0], p.c[:, 0]
    xn, cn = at(p.x, last), at(p.c, last)
    dx = t - at(p.x, k)
    out = 2.0 * at(p.c, k) + 6.0 * dx * at(p.d, k)
    out = jnp.where(jnp.abs(t - xn) <= ROUNDOFF_ERROR, 2.0 * cn, out)
    out = jnp.where(jnp.abs(t - x0) <= ROUNDOFF_ERROR, 2.0 * c0, out)
    return jnp.where((t < x0) | (t > xn), 0.0, out)


def _is_zero(tangent) -> bool:
    return all(isinstance(x, SymbolicZero) for x in jax.tree_util.tree_leaves(tangent))


def _zero_tangent(x):
    x = jnp.asarray(x)
    if jnp.issubdtype(x.dtype, jnp.inexact):
        return jnp.zeros_like(x)
    return np.zeros(x.shape, jax.dtypes.float0)  # integer leaves (knot counts) take float0


def _tangent(formula, p, t, dp, dt, slope):
    """JVP of `formula(p, t)`: `slope(p, t)·dt` plus, only when the knot data are being
    differentiated, the plain formula's tangent with respect to them."""
    out = formula(p, t)
    tangent = jnp.zeros_like(out) if isinstance(dt, SymbolicZero) else slope(p, t) * dt
    if not _is_zero(dp):
        dp = jax.tree_util.tree_map(
            lambda x, z: _zero_tangent(x) if isinstance(z, SymbolicZero) else z, p, dp
        )
        tangent = tangent + jax.jvp(lambda pp: formula(pp, t), (p,), (dp,))[1]
    return out, tangent


@jax.custom_jvp
def spline_derivatives(p: SplineParams, t: jnp.ndarray) -> jnp.ndarray:
    """df/dt (S,) of every function at its own argument t (S,), as OpenSim's calcDerivative."""
    return _derivatives(p, t)


def _spline_derivatives_jvp(primals, tangents):
    (p, t), (dp, dt) = primals, tangents
    return _tangent(_derivatives, p, t, dp, dt, spline_second_derivatives)


spline_derivatives.defjvp(_spline_derivatives_jvp, symbolic_zeros=True)


@jax.custom_jvp
def spline_values(p: SplineParams, t: jnp.ndarray) -> jnp.ndarray:
    """f(t) (S,) of every function at its own argument t (S,), as OpenSim's calcValue."""
    return _values(p, t)


def _spline_values_jvp(primals, tangents):
    (p, t), (dp, dt) = primals, tangents
    return _tangent(_values, p, t, dp, dt, spline_derivatives)


spline_values.defjvp(_spline_values_jvp, symbolic_zeros=True)
