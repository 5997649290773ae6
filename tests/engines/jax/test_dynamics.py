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
        fj = kinematics.frame_jacobians(lambda qq: kinematics.model_frames(params, qq), q, u)
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

    fj = kinematics.frame_jacobians(lambda qq: kinematics.model_frames(params, qq), q, u)
    gen = dynamics.point_force_to_generalized(fj, body, point(q), force)
    power = jnp.sum(jax.jvp(point, (q,), (u,))[1] * force)
    np.testing.assert_allclose(gen @ u, power, rtol=1e-12)
