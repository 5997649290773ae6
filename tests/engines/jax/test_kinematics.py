"""Body poses and centres of mass against OpenSim, live, at random states."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("opensim")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

from l2run.engines.jax import kinematics  # noqa: E402
from l2run.engines.jax.compile import compile_params  # noqa: E402

from .reference import OpenSimReference, random_q, random_u  # noqa: E402

N_STATES = 200
POSITION_TOL_M = 1e-8
ANGLE_TOL_RAD = 1e-8


@pytest.fixture(scope="module")
def params():
    return jax.tree.map(jnp.asarray, compile_params())


@pytest.fixture(scope="module")
def reference():
    return OpenSimReference(forces=False)


def test_body_frames_and_coms_match_opensim(params, reference):
    frames_fn = jax.jit(lambda q: kinematics.model_frames(params, q))

    @jax.jit
    def com_state(q, u):
        def com(qq):
            return kinematics.system_com(
                params.tree,
                kinematics.com_positions(params.tree, kinematics.model_frames(params, qq)),
            )

        return jax.jvp(com, (q,), (u,))

    rng = np.random.default_rng(20260)
    worst = 0.0
    for _ in range(N_STATES):
        q, u = random_q(rng), random_u(rng)
        reference.set_state(q, u)
        origin, angle = reference.body_frames()
        frames = frames_fn(jnp.asarray(q))
        np.testing.assert_allclose(frames.origin, origin, rtol=0, atol=POSITION_TOL_M)
        dangle = np.angle(np.exp(1j * (np.asarray(frames.angle) - angle)))
        assert np.max(np.abs(dangle)) <= ANGLE_TOL_RAD
        coms = kinematics.com_positions(params.tree, frames)
        np.testing.assert_allclose(coms, reference.body_coms(), rtol=0, atol=POSITION_TOL_M)
        com_p, com_v = com_state(jnp.asarray(q), jnp.asarray(u))
        ref_p, ref_v = reference.system_com()
        np.testing.assert_allclose(com_p, ref_p, rtol=0, atol=POSITION_TOL_M)
        np.testing.assert_allclose(com_v, ref_v, rtol=0, atol=POSITION_TOL_M)
        worst = max(worst, float(np.max(np.abs(np.asarray(frames.origin) - origin))))
    print(f"worst body origin difference {worst:.2e} m over {N_STATES} states")


def test_knee_translation_follows_spline(params):
    """Tibia origin in the femur frame is the knee splines' (tx, ty): moves with knee angle."""
    q = np.array(params.default.q)
    a = kinematics.model_frames(params, jnp.asarray(q))
    q[4] = -1.5
    b = kinematics.model_frames(params, jnp.asarray(q))
    rel = kinematics.rotate(-b.angle[1], b.origin[2] - b.origin[1])
    rel0 = kinematics.rotate(-a.angle[1], a.origin[2] - a.origin[1])
    assert not np.allclose(rel, rel0)


N_JACOBIAN_STATES = 100
# Closed form and forward-mode differentiation sum the same terms in another order: they agree
# to this fraction of each array's largest entry; poses to a few units in the last place of
# each entry (XLA versions order the additions differently) and POSE_ROUNDOFF near zero (m, rad).
JACOBIAN_TOL = 1e-12
POSE_ULPS = 4
POSE_ROUNDOFF = 1e-15


def test_closed_form_frame_jacobians_equal_forward_mode(params):
    """`model_frame_jacobians` gives what differentiating `model_frames` gives: poses,
    Jacobians and J̇·u, across and beyond the joint ranges (the knee splines' ends included)."""
    closed = jax.jit(lambda q, u: kinematics.model_frame_jacobians(params, q, u))
    forward = jax.jit(
        lambda q, u: kinematics.frame_jacobians(
            lambda qq: kinematics.model_frames(params, qq), q, u
        )
    )
    rng = np.random.default_rng(11)
    pose_rtol = POSE_ULPS * np.finfo(np.float64).eps
    for _ in range(N_JACOBIAN_STATES):
        q, u = jnp.asarray(random_q(rng)), jnp.asarray(random_u(rng))
        got, want = closed(q, u), forward(q, u)
        for name in ("origin_jac", "angle_jac", "origin_bias", "angle_bias"):
            scale = 1.0 + float(jnp.max(jnp.abs(getattr(want, name))))
            np.testing.assert_allclose(
                getattr(got, name), getattr(want, name), rtol=0, atol=JACOBIAN_TOL * scale
            )
        np.testing.assert_allclose(
            got.frames.origin, want.frames.origin, rtol=pose_rtol, atol=POSE_ROUNDOFF
        )
        np.testing.assert_allclose(
            got.frames.angle, want.frames.angle, rtol=pose_rtol, atol=POSE_ROUNDOFF
        )


def test_tree_sum_is_the_sum_over_each_bodys_joints_from_ground(params):
    """`tree_sum` (parents' sums plus the own row) equals the ancestor matrix product."""
    ancestors = np.asarray(params.tree.ancestors)
    assert ancestors.sum() > ancestors.shape[0]  # a tree deeper than one level
    x = np.random.default_rng(5).normal(size=(ancestors.shape[0], 4))
    got = kinematics.tree_sum(params.tree, jnp.asarray(x))
    np.testing.assert_allclose(got, ancestors @ x, rtol=1e-14, atol=1e-14)


def test_body_coordinates_hold_every_nonzero_jacobian_column(params):
    """A body's frame Jacobians are zero outside `body_coordinates` (the stiff substep's contact
    products skip those columns) and not identically zero inside them."""
    from l2run.model.names import BODIES, COORDINATES

    coordinates = kinematics.body_coordinates(params.tree)
    foot = BODIES.index("calcn_r")
    assert [COORDINATES[c] for c in coordinates[foot]] == [
        "pelvis_tilt", "pelvis_tx", "pelvis_ty", "hip_flexion_r", "knee_angle_r", "ankle_angle_r"
    ]  # fmt: skip
    rng = np.random.default_rng(3)
    seen = [np.zeros(len(COORDINATES), bool) for _ in BODIES]
    for _ in range(5):
        q, u = jnp.asarray(random_q(rng)), jnp.asarray(random_u(rng))
        fj = kinematics.model_frame_jacobians(params, q, u)
        rows = np.concatenate([fj.origin_jac, np.asarray(fj.angle_jac)[:, None]], axis=1)
        for b, cols in enumerate(coordinates):
            outside = np.ones(len(COORDINATES), bool)
            outside[cols] = False
            assert np.all(rows[b][:, outside] == 0.0), BODIES[b]
            seen[b] |= np.any(rows[b] != 0.0, axis=0)
    for b, cols in enumerate(coordinates):
        assert np.all(seen[b][cols]), BODIES[b]
