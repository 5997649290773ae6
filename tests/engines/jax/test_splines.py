"""SimmSpline / Constant / LinearFunction in JAX against OpenSim 4.6 evaluated live."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from l2run.engines.jax import splines
from l2run.model.definition import (
    Constant,
    LinearFunction,
    MovingPathPoint,
    SimmSpline,
    load_definition,
)

osim = pytest.importorskip("opensim", reason="opensim is needed for the live parity reference")

REL_TOL = 1e-8


def _model_functions() -> list:
    """Every function of a coordinate in the model: knee translations, moving path points."""
    d = load_definition()
    fns = [a.function for j in d.joints for a in j.spatial_transform]
    for m in d.muscles:
        for p in m.path:
            if isinstance(p, MovingPathPoint):
                fns += [p.x_location, p.y_location, p.z_location]
    # A few synthetic ones: 3 knots (no divided-difference end conditions), 2 knots, constants.
    fns += [
        SimmSpline(x=(-1.0, 0.2, 1.5), y=(0.3, -0.1, 0.7)),
        SimmSpline(x=(0.0, 2.0), y=(1.0, -3.0)),
        Constant(value=-0.25),
        LinearFunction(coefficients=(1.7, -0.4)),
    ]
    return fns


def _opensim_function(fn):
    if isinstance(fn, Constant):
        return osim.Constant(fn.value)
    if isinstance(fn, LinearFunction):
        return osim.LinearFunction(*fn.coefficients)
    s = osim.SimmSpline()
    for x, y in zip(fn.x, fn.y, strict=True):
        s.addPoint(x, y)
    return s


def _sample_points(fn, rng: np.random.Generator) -> np.ndarray:
    if isinstance(fn, SimmSpline):
        lo, hi = fn.x[0], fn.x[-1]
        knots = np.array(fn.x)
        edge = [lo - 1e-14, lo + 1e-14, hi - 1e-14, hi + 1e-14, lo - 1e-9, hi + 1e-9]
    else:
        lo, hi, knots, edge = -2.0, 2.0, np.array([0.0, 1.0]), []
    span = hi - lo
    inside = rng.uniform(lo, hi, 40)
    outside = np.concatenate([rng.uniform(lo - span, lo, 10), rng.uniform(hi, hi + span, 10)])
    return np.concatenate([inside, outside, knots, edge])


def test_values_and_derivatives_match_opensim():
    rng = np.random.default_rng(0)
    fns = _model_functions()
    params = splines.compile_splines(fns)
    deriv = osim.StdVectorInt()
    deriv.append(0)
    worst_value, worst_slope = 0.0, 0.0
    for i, fn in enumerate(fns):
        ref_fn = _opensim_function(fn)
        ts = _sample_points(fn, rng)
        ref_v = np.array([ref_fn.calcValue(osim.Vector(1, float(t))) for t in ts])
        ref_d = np.array([ref_fn.calcDerivative(deriv, osim.Vector(1, float(t))) for t in ts])
        # The same function repeated once per sample point: one batched call.
        index = np.full(len(ts), i)
        rows = jax.tree_util.tree_map(lambda a, index=index: a[index], params)
        got_v = np.asarray(splines.spline_values(rows, jnp.asarray(ts)))
        got_d = np.asarray(splines.spline_derivatives(rows, jnp.asarray(ts)))
        scale_v = max(np.max(np.abs(ref_v)), 1e-12)
        scale_d = max(np.max(np.abs(ref_d)), 1e-12)
        worst_value = max(worst_value, np.max(np.abs(got_v - ref_v)) / scale_v)
        worst_slope = max(worst_slope, np.max(np.abs(got_d - ref_d)) / scale_d)
    print(f"max rel error: value {worst_value:.2e}, slope {worst_slope:.2e}")
    assert worst_value <= REL_TOL, worst_value
    assert worst_slope <= REL_TOL, worst_slope


def test_batched_evaluation_and_autodiff_agree_with_derivative():
    fns = _model_functions()
    params = splines.compile_splines(fns)
    rng = np.random.default_rng(1)
    t = jnp.asarray(rng.uniform(-2.5, 2.5, len(fns)))
    values = jax.jit(splines.spline_values)(params, t)
    assert values.shape == (len(fns),)
    # Forward-mode AD through the value gives OpenSim's derivative formula (custom JVP) ...
    _, tangent = jax.jvp(lambda tt: splines.spline_values(params, tt), (t,), (jnp.ones_like(t),))
    np.testing.assert_array_equal(tangent, splines.spline_derivatives(params, t))
    # ... and reverse mode through value and derivative stays finite, also under vmap.
    g = jax.grad(lambda tt: jnp.sum(splines.spline_derivatives(params, tt) ** 2))(t)
    assert np.all(np.isfinite(g))
    batch = jnp.stack([t, t + 0.1, t - 3.0])
    vb = jax.vmap(lambda tt: splines.spline_values(params, tt))(batch)
    np.testing.assert_allclose(vb[0], values, rtol=1e-14, atol=1e-16)  # jit may fuse (FMA)


def test_second_derivative_is_zero_outside_and_matches_opensim_inside():
    fn = load_definition().joints[2].spatial_transform[3].function  # knee_r translation1
    params = splines.compile_splines([fn])
    ref_fn = _opensim_function(fn)
    d2 = osim.StdVectorInt()
    d2.append(0)
    d2.append(0)
    for t in (-3.0, -1.3, 0.05, 1.9, 2.5):
        ref = ref_fn.calcDerivative(d2, osim.Vector(1, t))
        got = float(splines.spline_second_derivatives(params, jnp.array([t]))[0])
        assert abs(got - ref) <= REL_TOL * max(abs(ref), 1e-6)


def test_bad_knots_raise():
    with pytest.raises(ValueError):
        splines.compile_splines([SimmSpline(x=(0.0,), y=(1.0,))])
    with pytest.raises(ValueError):
        splines.compile_splines([SimmSpline(x=(1.0, 0.0), y=(1.0, 2.0))])
