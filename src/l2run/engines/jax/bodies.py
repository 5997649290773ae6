"""Planar body-tree parameters: masses, joint frames and joint functions, as plain arrays.

Every joint of the model rotates about the ground z axis and translates in the x-y plane, so a
joint is three scalar functions of the coordinates — rotation `rot`, translations `tx`, `ty`
(in the joint's parent frame F) — each `slope * q[coord] + intercept (+ spline(q[coord]))`.
Pin joints use `rot` only, the planar pelvis joint all three, the knee CustomJoint a rotation plus
two SimmSpline translations, weld joints and the locked lumbar joint none (constants).
"""

from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp

from l2run.engines.jax.static import Static

# Joint degree-of-freedom slots, in this order along the last axis of the dof arrays.
DOF_ROT, DOF_TX, DOF_TY = 0, 1, 2
N_DOFS = 3


class BodyTreeParams(NamedTuple):
    """Body tree of `nb` bodies (ground excluded), in the model's BodySet order.

    Ground is index `nb` wherever a body index appears. Lengths m, angles rad, masses kg.
    The tree's structure (parents, which coordinate and spline drives each dof) is `Static`.
    """

    parent: Static  # (nb,) int: parent body index (nb = ground)
    ancestors: Static  # (nb, nb) float: [b, j] = 1 if joint j lies on the path ground→b
    loc_in_parent: jnp.ndarray  # (nb, 2) joint frame F origin in the parent body frame
    orient_in_parent: jnp.ndarray  # (nb,) F orientation about z in the parent frame
    loc_in_child: jnp.ndarray  # (nb, 2) joint frame M origin in the child body frame
    orient_in_child: jnp.ndarray  # (nb,) M orientation about z in the child frame
    dof_coord: Static  # (nb, 3) int: q index driving each dof (n_q = none, constant)
    dof_linear: jnp.ndarray  # (nb, 3, 2): (slope, intercept) of each dof
    dof_spline: Static  # (nb, 3, n_splines) float: 1 where spline s adds to the dof
    spline_coord: Static  # (n_splines,) int: q index each spline is evaluated at
    mass: jnp.ndarray  # (nb,) kg
    com: jnp.ndarray  # (nb, 2) centre of mass in the body frame, m
    izz: jnp.ndarray  # (nb,) moment of inertia about the COM, z axis, kg m^2
    gravity: jnp.ndarray  # (2,) m/s^2, ground frame
