"""SimmSpline / Constant / LinearFunction in JAX against OpenSim 4.6 evaluated live."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from l2run.engines.jax import splines
from l2run.engines.jax.static import Static
from l2run.model.definition import (
    Constant,
    LinearFunction,
    MovingPathPoint,
    SimmSpline,
    load_definition,
)

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


def _opensim():
    """The opensim module (skips the calling test where it is not installed)."""
    return pytest.importorskip("opensim", reason="opensim is needed for the live parity reference")


def _opensim_function(fn):
    osim = _opensim()
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
    osim = _opensim()
    rng = np.random.default_rng(0)
    fns = _model_functions()
    params = splines.compile_splines(fns)
    deriv = osim.StdVectorInt()
    deriv.append(0)
    index, ts, ref_v, ref_d = [], [], [], []
    for i, fn in enumerate(fns):
        ref_fn = _opensim_function(fn)
        t = _sample_points(fn, rng)
        index.append(np.full(len(t), i))
        ts.append(t)
        ref_v.append([ref_fn.calcValue(osim.Vector(1, float(x))) for x in t])
        ref_d.append([ref_fn.calcDerivative(deriv, osim.Vector(1, float(x))) for x in t])
    # One batched call: row k of `rows` is the function sample k belongs to.
    sample_rows = np.concatenate(index)
    rows = jax.tree_util.tree_map(lambda a: a[sample_rows], params)
    rows = rows._replace(n=Static(params.n.array[sample_rows]))  # structure: not a leaf
    t_all = jnp.asarray(np.concatenate(ts))
    got_v = np.split(
        np.asarray(splines.spline_values(rows, t_all)), np.cumsum([len(t) for t in ts])
    )
    got_d = np.split(
        np.asarray(splines.spline_derivatives(rows, t_all)), np.cumsum([len(t) for t in ts])
    )
    worst_value, worst_slope = 0.0, 0.0
    for gv, gd, rv, rd in zip(got_v, got_d, ref_v, ref_d, strict=False):
        rv, rd = np.array(rv), np.array(rd)
        # errors relative to each function's own scale (values cross zero)
        worst_value = max(worst_value, np.max(np.abs(gv - rv)) / max(np.max(np.abs(rv)), 1e-12))
        worst_slope = max(worst_slope, np.max(np.abs(gd - rd)) / max(np.max(np.abs(rd)), 1e-12))
    print(f"max rel error: value {worst_value:.2e}, slope {worst_slope:.2e}")
    assert worst_value <= REL_TOL, worst_value
    assert worst_slope <= REL_TOL, worst_slope


def test_batched_evaluation_and_autodiff_agree_with_derivative():
    fns = _model_functions()
    params = splines.compile_splines(fns)
    rng = np.random.default_rng(1)
    t = jnp.asarray(rng.uniform(-2.5, 2.5, len(fns)))

    @jax.jit
    def everything(tt):
        values, tangent = jax.jvp(
            lambda x: splines.spline_values(params, x), (tt,), (jnp.ones_like(tt),)
        )
        grad = jax.grad(lambda x: jnp.sum(splines.spline_derivatives(params, x) ** 2))(tt)
        batch = jax.vmap(lambda x: splines.spline_values(params, x))(jnp.stack([tt, tt - 3.0]))
        return values, tangent, splines.spline_derivatives(params, tt), grad, batch

    values, tangent, slope, grad, batch = everything(t)
    assert values.shape == (len(fns),)
    # Forward-mode AD through the value gives OpenSim's derivative formula (custom JVP) ...
    np.testing.assert_allclose(tangent, slope, rtol=1e-14, atol=1e-16)
    # ... reverse mode through the derivative stays finite, and vmap batches rows.
    assert np.all(np.isfinite(np.asarray(grad)))
    np.testing.assert_allclose(batch[0], values, rtol=1e-14, atol=1e-16)


def test_second_derivative_is_zero_outside_and_matches_opensim_inside():
    osim = _opensim()
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
