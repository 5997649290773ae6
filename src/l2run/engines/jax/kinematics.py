"""Planar forward kinematics of the body tree: body frames, COMs and body points in ground.

A body's ground frame composes, along its path from ground, the joint frames:
``X_GB = X_GP · X_PF · X_FM(q) · X_MB``. In the plane every rotation is about z, so the body
angle is a sum of joint angles (``ancestors @ alpha``) and the body origin a sum of per-joint
offsets expressed in ground (``ancestors @ d``): two small matrix products, no Python loop over
the tree, so the same code runs under jit/vmap/grad for any tree compiled into the params.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from l2run.engines.jax.bodies import DOF_ROT, DOF_TX, DOF_TY, BodyTreeParams


class BodyFrames(NamedTuple):
    """Ground-frame poses of every body: origin (nb, 2) m and angle about z (nb,) rad."""

    origin: jnp.ndarray
    angle: jnp.ndarray


def rotate(angle: jnp.ndarray, v: jnp.ndarray) -> jnp.ndarray:
    """Rotate 2-D vectors `v` (..., 2) by `angle` (...) about z."""
    c, s = jnp.cos(angle), jnp.sin(angle)
    return jnp.stack([c * v[..., 0] - s * v[..., 1], s * v[..., 0] + c * v[..., 1]], axis=-1)


def cross_z(r: jnp.ndarray, f: jnp.ndarray) -> jnp.ndarray:
    """z component of the 3-D cross product of in-plane vectors `r` × `f` (..., 2)."""
    return r[..., 0] * f[..., 1] - r[..., 1] * f[..., 0]


def perp(v: jnp.ndarray) -> jnp.ndarray:
    """ẑ × v for in-plane vectors (..., 2)."""
    return jnp.stack([-v[..., 1], v[..., 0]], axis=-1)


def joint_dofs(tree: BodyTreeParams, q: jnp.ndarray, spline_values: jnp.ndarray) -> jnp.ndarray:
    """Joint (rotation rad, tx m, ty m) per body (nb, 3) from coordinates q (n_q,).

    `spline_values` (n_splines,) are the model's coordinate splines already evaluated at
    `q[tree.spline_coord]` (see `splines.py`); a dof with no coordinate sees q = 0.
    """
    q_ext = jnp.concatenate([q, jnp.zeros((1,), q.dtype)])
    x = q_ext[tree.dof_coord]
    linear = tree.dof_linear[..., 0] * x + tree.dof_linear[..., 1]
    return linear + tree.dof_spline @ spline_values


def body_frames_from_dofs(tree: BodyTreeParams, dofs: jnp.ndarray) -> BodyFrames:
    """Ground poses of all bodies from their joints' (rot, tx, ty) (nb, 3)."""
    alpha = tree.orient_in_parent + dofs[:, DOF_ROT] - tree.orient_in_child
    angle = tree.ancestors @ alpha
    parent_angle = jnp.concatenate([angle, jnp.zeros((1,), angle.dtype)])[tree.parent]
    translation = jnp.stack([dofs[:, DOF_TX], dofs[:, DOF_TY]], axis=-1)
    offset = (
        rotate(parent_angle, tree.loc_in_parent)
        + rotate(parent_angle + tree.orient_in_parent, translation)
        - rotate(angle, tree.loc_in_child)
    )
    return BodyFrames(origin=tree.ancestors @ offset, angle=angle)


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
    """Jacobians and J̇·u of `frames_fn(q) -> BodyFrames` by forward-mode differentiation."""
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
    return body_frames(tree, q, spline_values(params.joint_splines, q[tree.spline_coord]))
