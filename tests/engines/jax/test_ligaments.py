"""CoordinateLimitForce in JAX against OpenSim 4.6's calcLimitForce computed live."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from l2run.engines.jax import ligaments
from l2run.model.definition import load_definition
from l2run.model.names import COORDINATES, LIGAMENTS

REL_TOL = 1e-8
N_STATES = 200


def _reference():
    """The live OpenSim reference (skips the calling test where opensim is not installed)."""
    pytest.importorskip("opensim", reason="opensim is needed for the live parity reference")
    from tests.engines.jax import forces_reference

    return forces_reference


def test_limit_forces_match_opensim_in_every_region():
    d = load_definition()
    params = ligaments.compile_ligaments(d)
    ref = _reference().ForceReference()
    fn = jax.jit(ligaments.limit_forces)
    rng = np.random.default_rng(5)
    lo, hi = np.asarray(params.low_start), np.asarray(params.up_end)
    width = np.asarray(params.up_end) - np.asarray(params.q_up)
    got, want = [], []
    regions = np.zeros((len(LIGAMENTS), 5), dtype=int)  # below, lower ramp, free, upper ramp, above
    for _ in range(N_STATES):
        q = rng.uniform(-1.0, 1.0, len(COORDINATES))
        q[1], q[2] = rng.uniform(-1, 5), rng.uniform(0.6, 1.1)
        # every limited coordinate from 2 transition widths below its lower limit to 2 above
        qc = rng.uniform(lo - width, hi + width)
        q[np.asarray(params.coord)] = qc
        u = rng.uniform(-8, 8, len(COORDINATES))
        ref.set_state(q, u)
        got.append(np.asarray(fn(params, jnp.asarray(q), jnp.asarray(u))))
        want.append([f.calcLimitForce(ref.state) for f in ref.ligaments])
        edges = np.stack([lo, np.asarray(params.q_low), np.asarray(params.q_up), hi])
        regions[np.arange(len(LIGAMENTS)), np.sum(qc > edges, axis=0)] += 1
    assert np.all(regions > 0), regions  # every ligament sampled in every region
    # Floor 1e-5 N·m: just past a limit K(q) = K·(1 − step(x)) with step ≈ 1 cancels, so OpenSim's
    # own value carries ~1e-16·K·(transition) ≈ 1e-14 N·m of rounding (jit's FMA differs there).
    err = _reference().rel_err(np.array(got), np.array(want), 1e-5)
    abs_err = np.max(np.abs(np.array(got) - np.array(want)))
    print(f"max relative error, ligament torques: {err:.1e} (max abs {abs_err:.1e} N·m)")
    assert err <= REL_TOL


def test_generalized_forces_and_gradients():
    params = ligaments.compile_ligaments(load_definition())
    q = jnp.array([0.0, 0.0, 0.9, 2.2, 0.3, -0.75, -0.6, -2.5, 0.36])
    u = jnp.linspace(-2, 2, 9)
    torques = ligaments.limit_forces(params, q, u)
    tau = ligaments.ligament_generalized_forces(params, torques, len(COORDINATES))
    for name, f in zip(LIGAMENTS, np.asarray(torques), strict=True):
        coord = load_definition().coordinate_limit_forces[LIGAMENTS.index(name)].coordinate
        assert tau[COORDINATES.index(coord)] == pytest.approx(f)
    assert float(jnp.sum(tau[:3])) == 0.0
    g = jax.jit(
        jax.grad(lambda qq, uu: jnp.sum(ligaments.limit_forces(params, qq, uu) ** 2), (0, 1))
    )(q, u)
    assert all(np.all(np.isfinite(np.asarray(x))) for x in g)
