"""Planar multibody dynamics of the body tree: mass matrix, bias and gravity forces, solve.

With body origin/angle Jacobians ``J_o``, ``J_θ`` (from `kinematics.frame_jacobians`) the COM
velocity of body b is ``J_c u`` with ``J_c = J_o + (ẑ × R c) J_θ``; Lagrange's equations of a
tree of rigid bodies give exactly (no approximation, the same equations Simbody solves)::

    M u̇ = Σ_b m_b J_cᵀ (g − J̇_c u) − I_b J_θᵀ J̇_θ u + Q_applied,
    M   = Σ_b m_b J_cᵀ J_c + I_b J_θᵀ J_θ.

Applied forces enter as generalized forces: coordinate torques directly, point forces through
the point's Jacobian (`point_force_to_generalized`), muscles through −F ∂L/∂q.
"""

from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp

from l2run.engines.jax.bodies import BodyTreeParams
from l2run.engines.jax.kinematics import FrameJacobians, cross_z, perp, rotate


class RigidBodyTerms(NamedTuple):
    """Mass matrix (n_q, n_q) and the generalized gravity minus velocity-product forces (n_q,)."""

    mass_matrix: jnp.ndarray
    passive_forces: jnp.ndarray


def rigid_body_terms(tree: BodyTreeParams, fj: FrameJacobians, u: jnp.ndarray) -> RigidBodyTerms:
    """Mass matrix and ``Σ m J_cᵀ(g − J̇_c u) − I J_θᵀ J̇_θ u`` for speeds u (n_q,)."""
    com_local = rotate(fj.frames.angle, tree.com)  # (nb, 2) COM offset from origin, ground
    omega = fj.angle_jac @ u  # (nb,) rad/s
    com_jac = fj.origin_jac + perp(com_local)[:, :, None] * fj.angle_jac[:, None, :]
    com_bias = (
        fj.origin_bias + perp(com_local) * fj.angle_bias[:, None] - (omega**2)[:, None] * com_local
    )
    mass_matrix = jnp.einsum("b,bki,bkj->ij", tree.mass, com_jac, com_jac) + jnp.einsum(
        "b,bi,bj->ij", tree.izz, fj.angle_jac, fj.angle_jac
    )
    accel = tree.gravity[None, :] - com_bias
    passive = jnp.einsum("b,bki,bk->i", tree.mass, com_jac, accel) - jnp.einsum(
        "b,bi,b->i", tree.izz, fj.angle_jac, fj.angle_bias
    )
    return RigidBodyTerms(mass_matrix=mass_matrix, passive_forces=passive)


def point_force_to_generalized(
    fj: FrameJacobians, body: jnp.ndarray, point: jnp.ndarray, force: jnp.ndarray
) -> jnp.ndarray:
    """Generalized forces (n_q,) of forces `force` (k, 2) N applied at ground points `point`
    (k, 2) m to the material points of bodies `body` (k,) int located there."""
    lever = point - fj.frames.origin[body]
    q_lin = jnp.einsum("kci,kc->i", fj.origin_jac[body], force)
    q_rot = fj.angle_jac[body].T @ cross_z(lever, force)
    return q_lin + q_rot


def accelerations(terms: RigidBodyTerms, applied: jnp.ndarray) -> jnp.ndarray:
    """u̇ (n_q,) from the rigid-body terms and applied generalized forces (n_q,)."""
    return jnp.linalg.solve(terms.mass_matrix, terms.passive_forces + applied)
