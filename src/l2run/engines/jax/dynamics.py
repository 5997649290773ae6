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

from collections.abc import Sequence
from typing import NamedTuple

import jax.numpy as jnp
import numpy as np

from l2run.engines.jax import linear_solve, minor_vmap
from l2run.engines.jax.bodies import BodyTreeParams
from l2run.engines.jax.indexed_writes import add_at
from l2run.engines.jax.kinematics import FrameJacobians, body_coordinates, cross_z, perp, rotate
from l2run.engines.jax.xla_options import computed_once


class RigidBodyTerms(NamedTuple):
    """Mass matrix (n_q, n_q) and the generalized gravity minus velocity-product forces (n_q,)."""

    mass_matrix: jnp.ndarray
    passive_forces: jnp.ndarray


def weighted_gram(
    left: jnp.ndarray, right: jnp.ndarray, weights: jnp.ndarray, row_cols: Sequence[np.ndarray]
) -> jnp.ndarray:
    """``Σ_r w_r left_rᵀ right_r`` (n, n) of rows (R, n) that are zero outside the columns
    `row_cols[r]` (sorted indices, fixed while tracing: a body's or a muscle's coordinates).
    Each row's outer product is taken on its own columns only, rows sharing their columns in
    one product, and the blocks are added into the n × n result at their fixed positions: the
    same sum as the dense product without the terms that are zero by the model's structure.
    Only for a batch of runners on the last axis (`minor_vmap.tracing_batch`): batched, the
    blocks took 1.06-1.08x less CPU per step than the dense product; for one runner the dense
    product is the faster (`RunEnv.step` 0.94x with blocks; benchmarks/RESULTS.md,
    2026-12-05 session 37)."""
    if not minor_vmap.tracing_batch():
        return left.T @ (weights[:, None] * right)
    n = left.shape[1]
    if any(np.any((np.asarray(c) < 0) | (np.asarray(c) >= n)) for c in row_cols):
        raise ValueError(f"row columns must lie in [0, {n})")
    groups: dict[tuple[int, ...], list[int]] = {}
    for r, cols in enumerate(row_cols):
        groups.setdefault(tuple(np.asarray(cols).tolist()), []).append(r)
    slots, values = [], []
    for cols, rows in groups.items():
        if not cols:
            continue
        cols, rows = np.asarray(cols), np.asarray(rows)
        a, b = left[rows][:, cols], right[rows][:, cols]
        values.append((a.T @ (weights[rows][:, None] * b)).reshape(-1))
        slots.append((cols[:, None] * n + cols[None, :]).reshape(-1))
    if not values:
        return jnp.zeros((n, n), left.dtype)
    return add_at(np.concatenate(slots), jnp.concatenate(values), n * n).reshape(n, n)


def rigid_body_terms(tree: BodyTreeParams, fj: FrameJacobians, u: jnp.ndarray) -> RigidBodyTerms:
    """Mass matrix and ``Σ m J_cᵀ(g − J̇_c u) − I J_θᵀ J̇_θ u`` for speeds u (n_q,)."""
    com_local = rotate(fj.frames.angle, tree.com)  # (nb, 2) COM offset from origin, ground
    omega = fj.angle_jac @ u  # (nb,) rad/s
    com_jac = fj.origin_jac + perp(com_local)[:, :, None] * fj.angle_jac[:, None, :]
    com_bias = (
        fj.origin_bias + perp(com_local) * fj.angle_bias[:, None] - (omega**2)[:, None] * com_local
    )
    # Both sums in one product each: the rows of every body's COM and angle Jacobians stacked
    # (3 nb, n_q) with their weights m, m, I (fewer, larger kernels on XLA's CPU backend).
    n_q = fj.angle_jac.shape[1]
    rows = jnp.concatenate([com_jac.reshape(-1, n_q), fj.angle_jac])
    weights = jnp.concatenate([jnp.repeat(tree.mass, 2), tree.izz])
    accel = jnp.concatenate([(tree.gravity[None, :] - com_bias).reshape(-1), -fj.angle_bias])
    body_cols = body_coordinates(tree)
    row_cols = [body_cols[b] for b in range(len(body_cols)) for _ in range(2)] + body_cols
    mass_matrix = weighted_gram(rows, rows, weights, row_cols)
    passive = rows.T @ (weights * accel)
    return RigidBodyTerms(mass_matrix=mass_matrix, passive_forces=passive)


def body_wrenches_to_generalized(
    fj: FrameJacobians, force: jnp.ndarray, torque: jnp.ndarray
) -> jnp.ndarray:
    """Generalized forces (n_q,) of a force (nb, 2) N at each body's origin plus a torque (nb,)
    N·m about z on each body: ``Σ_b J_o,bᵀ F_b + J_θ,bᵀ τ_b``."""
    return jnp.einsum("bci,bc->i", fj.origin_jac, force) + fj.angle_jac.T @ torque


def per_body_sum(body: jnp.ndarray, values: jnp.ndarray, n_bodies: int) -> jnp.ndarray:
    """Sum `values` (k, ...) over the points of each body (`body` (k,) int) → (n_bodies, ...);
    indices outside [0, n_bodies) (ground) are dropped."""
    return add_at(body, values, n_bodies)


def point_force_to_generalized(
    fj: FrameJacobians, body: jnp.ndarray, point: jnp.ndarray, force: jnp.ndarray
) -> jnp.ndarray:
    """Generalized forces (n_q,) of forces `force` (k, 2) N applied at ground points `point`
    (k, 2) m to the material points of bodies `body` (k,) int located there.

    The forces are first reduced to one force and torque (about the origin) per body, so the
    body Jacobians are used once per body rather than gathered once per point: the same sum,
    with far less memory traffic when many points (every contact pair) act on few bodies.
    """
    n_bodies = fj.frames.angle.shape[0]
    torque = cross_z(point - fj.frames.origin[body], force)
    # Stored: XLA's CPU fusion would otherwise redo each body's sum over its points for every
    # generalized force that reads it (n_q times).
    return body_wrenches_to_generalized(
        fj,
        computed_once(per_body_sum(body, force, n_bodies)),
        computed_once(per_body_sum(body, torque, n_bodies)),
    )


def accelerations(terms: RigidBodyTerms, applied: jnp.ndarray) -> jnp.ndarray:
    """u̇ (n_q,) from the rigid-body terms and applied generalized forces (n_q,)."""
    return linear_solve.solve(terms.mass_matrix, terms.passive_forces + applied)
