"""Planar forward kinematics of the body tree: body frames, COMs and body points in ground.

A body's ground frame composes, along its path from ground, the joint frames:
``X_GB = X_GP · X_PF · X_FM(q) · X_MB``. In the plane every rotation is about z, so the body
angle is a sum of joint angles and the body origin a sum of per-joint offsets expressed in
ground, each summed over the joints on the body's path from ground (`tree_sum`: the tree's
structure is `Static`, so these are sums over fixed sets of rows), for any tree compiled into
the params and under jit/vmap/grad.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from l2run.engines.jax.bodies import DOF_ROT, DOF_TX, DOF_TY, BodyTreeParams
from l2run.engines.jax.indexed_writes import add_at
from l2run.engines.jax.static import concrete
from l2run.engines.jax.xla_options import computed_once
from l2run.model.names import COORDINATES


class BodyFrames(NamedTuple):
    """Ground-frame poses of every body: origin (nb, 2) m and angle about z (nb,) rad."""

    origin: jnp.ndarray
    angle: jnp.ndarray


def cos_sin(angle: jnp.ndarray) -> tuple[jnp.ndarray, jnp.ndarray]:
    """cos and sin of `angle` (rad), each computed once per element and stored.

    XLA's CPU fusion counts sine and cosine as cheap, so it recomputes them inside every
    consumer, once per element the consumer reads them for: a body's cosine once per column of
    its Jacobian, a path point's body cosine once per point. In the frame Jacobians that was
    most of their time. `xla_options.computed_once` makes XLA keep them (jnp.cos's and
    jnp.sin's bits).
    """
    return computed_once(jnp.cos(angle)), computed_once(jnp.sin(angle))


def rotate(angle: jnp.ndarray, v: jnp.ndarray) -> jnp.ndarray:
    """Rotate 2-D vectors `v` (..., 2) by `angle` (...) about z."""
    return rotate_by(*cos_sin(angle), v)


def rotate_by(cos: jnp.ndarray, sin: jnp.ndarray, v: jnp.ndarray) -> jnp.ndarray:
    """Rotate 2-D vectors `v` (..., 2) by the angles whose cosines and sines are given (...)."""
    return jnp.stack([cos * v[..., 0] - sin * v[..., 1], sin * v[..., 0] + cos * v[..., 1]], -1)


def cross_z(r: jnp.ndarray, f: jnp.ndarray) -> jnp.ndarray:
    """z component of the 3-D cross product of in-plane vectors `r` × `f` (..., 2)."""
    return r[..., 0] * f[..., 1] - r[..., 1] * f[..., 0]


def perp(v: jnp.ndarray) -> jnp.ndarray:
    """ẑ × v for in-plane vectors (..., 2)."""
    return jnp.stack([-v[..., 1], v[..., 0]], axis=-1)


def tree_sum(tree: BodyTreeParams, x: jnp.ndarray) -> jnp.ndarray:
    """Per body (nb, ...), the sum of the rows of `x` (nb, ...) of the joints on its path from
    ground (its own included): the parent's sum plus its own row, from ground outwards, so
    every row is read once (a gather of all ancestors per body made XLA recompute each row's
    producers once per descendant)."""
    parent = concrete(tree.parent)
    n_b = parent.shape[0]
    sums: dict[int, jnp.ndarray] = {}

    def total(b: int) -> jnp.ndarray:
        if b not in sums:
            sums[b] = x[b] if parent[b] == n_b else total(int(parent[b])) + x[b]
        return sums[b]

    return jnp.stack([total(b) for b in range(n_b)])


def body_coordinates(tree: BodyTreeParams) -> list[np.ndarray]:
    """Per body, the coordinates (sorted indices) its frame moves with: those of the joints on
    its path from ground. Its Jacobians are zero in every other column (fixed while tracing)."""
    ancestors = concrete(tree.ancestors) > 0
    dof_coord = concrete(tree.dof_coord)
    n_q = len(COORDINATES)  # dof_coord's "no coordinate"
    return [np.unique(dof_coord[row][dof_coord[row] < n_q]) for row in ancestors]


def _spline_dofs(tree: BodyTreeParams) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(body, dof slot, spline) of every spline term of the joints' dofs."""
    return np.nonzero(concrete(tree.dof_spline))


def _spline_terms(tree: BodyTreeParams, per_spline: jnp.ndarray) -> jnp.ndarray:
    """(nb, 3): each dof's sum of `per_spline` (n_splines,) over the splines it adds."""
    body, slot, spline = _spline_dofs(tree)
    n_b = concrete(tree.parent).shape[0]
    return add_at(body * 3 + slot, per_spline[spline], 3 * n_b).reshape(n_b, 3)


def joint_dofs(tree: BodyTreeParams, q: jnp.ndarray, spline_values: jnp.ndarray) -> jnp.ndarray:
    """Joint (rotation rad, tx m, ty m) per body (nb, 3) from coordinates q (n_q,).

    `spline_values` (n_splines,) are the model's coordinate splines already evaluated at
    `q[tree.spline_coord]` (see `splines.py`); a dof with no coordinate sees q = 0.
    """
    q_ext = jnp.concatenate([q, jnp.zeros((1,), q.dtype)])
    x = q_ext[concrete(tree.dof_coord)]
    linear = tree.dof_linear[..., 0] * x + tree.dof_linear[..., 1]
    return linear + _spline_terms(tree, spline_values)


class _JointTerms(NamedTuple):
    """Per body b, the three ground-frame vectors whose sum is its joint's offset from the
    parent origin to its own: A = R(θ_p) r_PF, B = R(θ_p + φ_F) t, C = R(θ_b) r_BM."""

    angle: jnp.ndarray  # (nb,) body angle θ_b
    parent_angle: jnp.ndarray  # (nb,) θ_p (0 for ground)
    a: jnp.ndarray  # (nb, 2)
    b: jnp.ndarray  # (nb, 2)
    c: jnp.ndarray  # (nb, 2)


def _joint_terms(tree: BodyTreeParams, dofs: jnp.ndarray) -> _JointTerms:
    alpha = tree.orient_in_parent + dofs[:, DOF_ROT] - tree.orient_in_child
    angle = tree_sum(tree, alpha)
    parent_angle = _parent_rows(tree, angle)
    translation = jnp.stack([dofs[:, DOF_TX], dofs[:, DOF_TY]], axis=-1)
    return _JointTerms(
        angle=angle,
        parent_angle=parent_angle,
        a=rotate(parent_angle, tree.loc_in_parent),
        b=rotate(parent_angle + tree.orient_in_parent, translation),
        c=rotate(angle, tree.loc_in_child),
    )


def body_frames_from_dofs(tree: BodyTreeParams, dofs: jnp.ndarray) -> BodyFrames:
    """Ground poses of all bodies from their joints' (rot, tx, ty) (nb, 3)."""
    j = _joint_terms(tree, dofs)
    return BodyFrames(origin=tree_sum(tree, j.a + j.b - j.c), angle=j.angle)


def body_frames(tree: BodyTreeParams, q: jnp.ndarray, spline_values: jnp.ndarray) -> BodyFrames:
    """Ground poses of all bodies from q (see `joint_dofs` for `spline_values`)."""
    return body_frames_from_dofs(tree, joint_dofs(tree, q, spline_values))


def com_positions(tree: BodyTreeParams, frames: BodyFrames) -> jnp.ndarray:
    """Body centres of mass in ground (nb, 2), m."""
    return frames.origin + rotate(frames.angle, tree.com)


def points_in_ground(frames: BodyFrames, body: jnp.ndarray, local: jnp.ndarray) -> jnp.ndarray:
    """Ground positions (k, 2) of points `local` (k, 2) fixed on bodies `body` (k,) int."""
    return frames.origin[body] + rotate(frames.angle[body], local)


def system_com(tree: BodyTreeParams, com: jnp.ndarray) -> jnp.ndarray:
    """Whole-model centre of mass (2,) from body COMs (nb, 2) (mass-weighted mean)."""
    return tree.mass @ com / jnp.sum(tree.mass)


class FrameJacobians(NamedTuple):
    """Body-frame kinematics to first and second order along the current speeds u.

    `origin_jac` (nb, 2, n_q) and `angle_jac` (nb, n_q) map u to origin velocity and angular
    velocity; `origin_bias` (nb, 2) and `angle_bias` (nb,) are the velocity-product
    accelerations J̇·u (the accelerations when u̇ = 0).
    """

    frames: BodyFrames
    origin_jac: jnp.ndarray
    angle_jac: jnp.ndarray
    origin_bias: jnp.ndarray
    angle_bias: jnp.ndarray


def frame_jacobians(frames_fn, q: jnp.ndarray, u: jnp.ndarray) -> FrameJacobians:
    """Jacobians and J̇·u of `frames_fn(q) -> BodyFrames` by forward-mode differentiation (any
    tree; the engine uses the closed form `model_frame_jacobians`, tested equal to this)."""
    jac = jax.jacfwd(frames_fn)(q)

    def velocity(qq: jnp.ndarray) -> BodyFrames:
        return jax.jvp(frames_fn, (qq,), (u,))[1]

    frames, bias = jax.jvp(velocity, (q,), (u,))
    del frames  # the primal of `velocity` is the velocity, not the pose
    return FrameJacobians(
        frames=frames_fn(q),
        origin_jac=jac.origin,
        angle_jac=jac.angle,
        origin_bias=bias.origin,
        angle_bias=bias.angle,
    )


def model_frames(params, q: jnp.ndarray) -> BodyFrames:
    """Ground poses of all bodies of a compiled `ModelParams` at coordinates q (9,)."""
    from l2run.engines.jax.splines import spline_values

    tree = params.tree
    spline_q = q[concrete(tree.spline_coord)]
    return body_frames(tree, q, spline_values(params.joint_splines, spline_q))


def _parent_rows(tree: BodyTreeParams, a: jnp.ndarray) -> jnp.ndarray:
    """Rows of per-body `a` (nb, ...) at each body's parent (zeros for ground)."""
    return jnp.concatenate([a, jnp.zeros((1, *a.shape[1:]), a.dtype)])[concrete(tree.parent)]


def model_frame_jacobians(params, q: jnp.ndarray, u: jnp.ndarray) -> FrameJacobians:
    """`frame_jacobians` of `model_frames` in closed form (the same quantities, far fewer kernels).

    Every body angle is a sum of joint rotations and every origin a sum of joint offsets
    A + B − C (`_joint_terms`), whose derivatives follow from d/dt R(θ)v = ẑ×R(θ)v·θ̇ + R(θ)v̇:
    the offset Jacobian is ẑ×(A + B)·J_θp + R(θ_p + φ_F)·J_t − ẑ×C·J_θb, and along u (q̈ = 0)
    Ä = −A θ̇_p² + ẑ×A θ̈_p, B̈ = −B θ̇_p² + ẑ×B θ̈_p + 2 ẑ×R ṫ θ̇_p + R ẗ, C̈ = −C θ̇_b² + ẑ×C θ̈_b,
    where θ̈ and ẗ are the joint functions' second derivatives times the speed squared (nonzero
    only for the spline dofs). Forward-mode differentiation computes the same numbers through
    18 tangents of the whole tree, which on XLA's CPU backend costs more than the dynamics.
    """
    from l2run.engines.jax.splines import (
        spline_derivatives,
        spline_second_derivatives,
        spline_values,
    )

    tree = params.tree
    n_q, dtype = q.shape[0], q.dtype
    spline_coord = concrete(tree.spline_coord)
    spline_q, spline_u = q[spline_coord], u[spline_coord]
    slope = spline_derivatives(params.joint_splines, spline_q)  # (S,)
    curvature = spline_second_derivatives(params.joint_splines, spline_q)
    dofs = joint_dofs(tree, q, spline_values(params.joint_splines, spline_q))
    # ∂dof/∂q (nb, 3, n_q): the linear part's slope at its coordinate plus the splines'.
    coordinate = (concrete(tree.dof_coord)[..., None] == np.arange(n_q)).astype(dtype)
    body, slot, spline = _spline_dofs(tree)
    n_b = coordinate.shape[0]
    spline_jac = add_at(
        (body * 3 + slot) * n_q + spline_coord[spline], slope[spline], 3 * n_b * n_q
    )
    dof_jac = tree.dof_linear[..., 0, None] * coordinate + spline_jac.reshape(n_b, 3, n_q)
    dof_rate = dof_jac @ u  # (nb, 3)
    dof_accel = _spline_terms(tree, curvature * spline_u**2)  # (nb, 3): d²dof/dq² (u, u)

    j = _joint_terms(tree, dofs)
    # Sums over each body's joints from ground: one for the angle's Jacobian, rate and J̇·u,
    # one (below) for the origin's (few large kernels instead of many small ones).
    angular = tree_sum(
        tree,
        jnp.concatenate(
            [dof_jac[:, DOF_ROT], dof_rate[:, DOF_ROT, None], dof_accel[:, DOF_ROT, None]], axis=1
        ),
    )
    angle_jac, omega, angle_bias = angular[:, :n_q], angular[:, n_q], angular[:, n_q + 1]
    parent_jac = _parent_rows(tree, angle_jac)
    parent_omega = _parent_rows(tree, omega)
    parent_bias = _parent_rows(tree, angle_bias)
    frame_angle = j.parent_angle + tree.orient_in_parent  # joint frame F in ground
    # R(θ_p + φ_F) applied to each column of ∂t/∂q (nb, 2, n_q)
    translation_jac = dof_jac[:, DOF_TX : DOF_TY + 1].swapaxes(1, 2)  # (nb, n_q, 2)
    rotated_translation_jac = rotate(frame_angle[:, None], translation_jac).swapaxes(1, 2)
    offset_jac = (
        perp(j.a + j.b)[:, :, None] * parent_jac[:, None, :]
        + rotated_translation_jac
        - perp(j.c)[:, :, None] * angle_jac[:, None, :]
    )
    translation_rate = rotate(frame_angle, dof_rate[:, DOF_TX : DOF_TY + 1])
    offset_accel = (
        -(j.a + j.b) * (parent_omega**2)[:, None]
        + perp(j.a + j.b) * parent_bias[:, None]
        + 2.0 * perp(translation_rate) * parent_omega[:, None]
        + rotate(frame_angle, dof_accel[:, DOF_TX : DOF_TY + 1])
        + j.c * (omega**2)[:, None]
        - perp(j.c) * angle_bias[:, None]
    )
    n_b = angle_jac.shape[0]
    linear = tree_sum(
        tree,
        jnp.concatenate([j.a + j.b - j.c, offset_accel, offset_jac.reshape(n_b, 2 * n_q)], axis=1),
    )
    return FrameJacobians(
        frames=BodyFrames(origin=linear[:, :2], angle=j.angle),
        origin_jac=linear[:, 4:].reshape(n_b, 2, n_q),
        angle_jac=angle_jac,
        origin_bias=linear[:, 2:4],
        angle_bias=angle_bias,
    )
