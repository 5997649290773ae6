"""Mass matrix and accelerations (gravity + velocity products only) against OpenSim, live."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("opensim")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

from l2run.engines.jax import dynamics, kinematics  # noqa: E402
from l2run.engines.jax.compile import compile_params  # noqa: E402

from .reference import OpenSimReference, random_q, random_u  # noqa: E402

N_STATES = 200
RELATIVE_TOL = 1e-9
# Accelerations near zero are compared absolutely (rad/s², m/s²).
ABSOLUTE_FLOOR = 1e-9


@pytest.fixture(scope="module")
def params():
    return jax.tree.map(jnp.asarray, compile_params())


def test_passive_dynamics_match_opensim(params):
    reference = OpenSimReference(forces=False)

    @jax.jit
    def mass_and_udot(q, u):
        fj = kinematics.model_frame_jacobians(params, q, u)
        terms = dynamics.rigid_body_terms(params.tree, fj, u)
        return terms.mass_matrix, dynamics.accelerations(terms, jnp.zeros_like(q))

    rng = np.random.default_rng(7)
    for _ in range(N_STATES):
        q, u = random_q(rng), random_u(rng)
        reference.set_state(q, u)
        mass, udot = mass_and_udot(jnp.asarray(q), jnp.asarray(u))
        ref_mass = reference.mass_matrix()
        np.testing.assert_allclose(mass, ref_mass, rtol=RELATIVE_TOL, atol=ABSOLUTE_FLOOR)
        np.testing.assert_allclose(udot, reference.udot(), rtol=RELATIVE_TOL, atol=ABSOLUTE_FLOOR)


def test_point_force_matches_virtual_work(params):
    """A point force's generalized force equals its power per unit speed (J_pᵀ F)."""
    q = jnp.asarray(params.default.q)
    u = jnp.asarray(np.linspace(-1.0, 1.0, 9))
    body = jnp.array([4])
    local = jnp.array([[0.03, 0.04]])
    force = jnp.array([[12.0, -250.0]])

    def point(qq):
        return kinematics.points_in_ground(kinematics.model_frames(params, qq), body, local)

    fj = kinematics.model_frame_jacobians(params, q, u)
    gen = dynamics.point_force_to_generalized(fj, body, point(q), force)
    power = jnp.sum(jax.jvp(point, (q,), (u,))[1] * force)
    np.testing.assert_allclose(gen @ u, power, rtol=1e-12)


# --- all state derivatives, every force on -----------------------------------------------------

N_FULL_STATES = 200
DERIVATIVE_RTOL = 1e-6
# Absolute floors for values near zero: u̇ (rad/s², m/s²), ȧ (1/s), l̇ (m/s).
UDOT_FLOOR, ADOT_FLOOR, LDOT_FLOOR = 1e-6, 1e-9, 1e-9
FOOT_SPHERE_RADIUS_M = 0.05


def _touching_course(rng, centers, psoas):
    """A course whose first obstacle overlaps a random foot sphere by up to 1 cm, plus one
    obstacle 3 m further on."""
    k = rng.integers(len(centers))
    r = rng.uniform(0.12, 0.25)
    overlap = rng.uniform(0.0, 0.01)
    dz = centers[k, 2]  # foot spheres sit off the z = 0 plane of the obstacles
    planar = np.sqrt((r + FOOT_SPHERE_RADIUS_M - overlap) ** 2 - dz**2)
    angle = rng.uniform(0.0, 2.0 * np.pi)
    touching = (centers[k, 0] - planar * np.cos(angle), centers[k, 1] - planar * np.sin(angle), r)
    far = (centers[k, 0] + 3.0, 0.0, 0.1)
    from l2run.course import Course

    return Course(obstacles=np.array(sorted([touching, far])), psoas=psoas)


def test_state_derivatives_match_opensim(params):
    """q̇, u̇, ȧ, l̇ at random states: every activation level, feet on/off the ground, ligaments
    beyond their limits, obstacles touching feet, random psoas strengths."""
    from l2run.engines.jax import contact, system
    from l2run.engines.jax.integrate import Continuous
    from l2run.observation import pad_obstacles

    from .reference import EngineReference

    reference = EngineReference()
    evaluate = jax.jit(lambda y, e, o, p: system.evaluate(params, y, e, o, p))
    centers_fn = jax.jit(
        lambda q: contact.sphere_centers(params.contact, *kinematics.model_frames(params, q))
    )
    lopt = np.asarray(params.muscles.optimal_fiber_length)
    rng = np.random.default_rng(11)
    seen = {"ground": 0, "airborne": 0, "obstacle": 0, "ligament": 0}
    for i in range(N_FULL_STATES):
        q, u = random_q(rng), random_u(rng)
        centers = np.asarray(centers_fn(jnp.asarray(q)))
        if i % 4 != 0:  # lowest foot sphere up to 2 cm into the ground
            q[2] += -np.min(centers[:, 1] - FOOT_SPHERE_RADIUS_M) - rng.uniform(0.0, 0.02)
            centers = np.asarray(centers_fn(jnp.asarray(q)))
        course = _touching_course(rng, centers, tuple(rng.uniform(0.5, 1.2, 2)))
        reference.set_course(course)
        activation = rng.uniform(0.01, 1.0, 18)
        fiber = lopt * rng.uniform(0.6, 1.4, 18)
        excitation = rng.uniform(0.0, 1.0, 18)
        expected = reference.derivatives(q, u, activation, fiber, excitation)
        ev = evaluate(
            Continuous(*map(jnp.asarray, (q, u, activation, fiber))),
            jnp.asarray(excitation),
            jnp.asarray(pad_obstacles(course.obstacles)),
            jnp.asarray(course.psoas),
        )
        got = ev.derivative
        np.testing.assert_array_equal(got.q, expected[0])
        for name, g, e, floor in (
            ("udot", got.u, expected[1], UDOT_FLOOR),
            ("adot", got.activation, expected[2], ADOT_FLOOR),
            ("ldot", got.fiber_length, expected[3], LDOT_FLOOR),
        ):
            np.testing.assert_allclose(
                g, e, rtol=DERIVATIVE_RTOL, atol=floor, err_msg=f"state {i}: {name}"
            )
        on_ground = bool(np.any(np.abs(np.asarray(ev.foot_forces)) > 0))
        seen["ground" if on_ground else "airborne"] += 1
        seen["ligament"] += int(np.sum(np.abs(np.asarray(ev.ligament_torques)) > 1.0))
        obstacle_forces = np.asarray(ev.contact.force)[np.asarray(ev.contact.contact_set) >= 2]
        seen["obstacle"] += int(np.any(obstacle_forces != 0))
    # The sample must actually exercise what it claims to.
    assert seen["ground"] >= N_FULL_STATES // 4 and seen["airborne"] >= 10, seen
    assert seen["obstacle"] >= N_FULL_STATES // 4, seen
    assert seen["ligament"] >= N_FULL_STATES // 2, seen


def test_many_point_forces_match_virtual_work(params):
    """Several forces on shared and distinct bodies (reduced per body before the Jacobians are
    applied) have the summed power of the individual point forces, for any speeds."""
    rng = np.random.default_rng(3)
    q = jnp.asarray(params.default.q)
    body = jnp.array([4, 4, 5, 9, 0, 4])
    local = jnp.asarray(rng.uniform(-0.1, 0.1, (6, 2)))
    force = jnp.asarray(rng.uniform(-300.0, 300.0, (6, 2)))

    def points(qq):
        return kinematics.points_in_ground(kinematics.model_frames(params, qq), body, local)

    for _ in range(5):
        u = jnp.asarray(rng.uniform(-2.0, 2.0, 9))
        fj = kinematics.model_frame_jacobians(params, q, u)
        gen = dynamics.point_force_to_generalized(fj, body, points(q), force)
        power = jnp.sum(jax.jvp(points, (q,), (u,))[1] * force)
        np.testing.assert_allclose(gen @ u, power, rtol=1e-12)


def test_weighted_gram_on_row_columns_equals_the_dense_product():
    """Rows zero outside their columns: the blocks' sum is the dense ``Σ w_r a_rᵀ b_r``."""
    from l2run.engines.jax import minor_vmap

    rng = np.random.default_rng(2)
    row_cols = [np.array([0, 1, 2]), np.array([0, 1, 2, 5]), np.array([3]), np.array([], int)]
    row_cols += row_cols[:2]  # rows sharing their columns go into one product
    mask = np.zeros((len(row_cols), 7))
    for r, cols in enumerate(row_cols):
        mask[r, cols] = 1.0
    a, b = rng.normal(size=mask.shape) * mask, rng.normal(size=mask.shape) * mask
    w = rng.uniform(0.5, 2.0, len(row_cols))
    dense = a.T @ (w[:, None] * b)

    def gram(aa, bb, ww):
        return dynamics.weighted_gram(aa, bb, ww, row_cols)

    blocks = minor_vmap.vmap_minor(gram, (True, True, True))  # traced as a batch: blocks
    got = blocks(*(jnp.asarray(x)[..., None] for x in (a, b, w)))[..., 0]
    np.testing.assert_allclose(got, dense, rtol=1e-13, atol=1e-14)
    np.testing.assert_allclose(gram(a, b, w), dense, rtol=1e-13, atol=1e-14)  # one runner
    with pytest.raises(ValueError, match="columns"):
        minor_vmap.vmap_minor(
            lambda aa: dynamics.weighted_gram(aa, aa, jnp.ones(1), [np.array([7])]), (True,)
        )(jnp.ones((1, 7, 2)))
