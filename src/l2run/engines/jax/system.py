"""The whole model's state derivatives: kinematics + muscles + paths + ligaments + contact → u̇.

One evaluation (what integrators count) computes the body frames with their Jacobians and
velocity products, the muscle paths, the Thelen2003 muscle derivatives, the ligament torques and
the Hunt–Crossley contact forces, maps all of them to generalized forces, and solves the 9×9
mass-matrix system. Everything is a pure function of arrays.
"""

from __future__ import annotations

import functools
import operator
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from l2run.engines.jax import (
    contact,
    dynamics,
    implicit_muscles,
    kinematics,
    ligaments,
    linear_solve,
    minor_vmap,
    muscles,
    paths,
)
from l2run.engines.jax.indexed_writes import add_at
from l2run.engines.jax.integrate import Continuous, StiffJacobian
from l2run.engines.jax.params import ModelParams
from l2run.engines.jax.xla_options import computed_once
from l2run.model.names import BODIES, COORDINATES, OBS_BODIES

_OBS_BODY_INDEX = jnp.array([BODIES.index(b) for b in OBS_BODIES])


class Evaluation(NamedTuple):
    """Everything one derivative evaluation computes (for reporting and tests)."""

    derivative: Continuous
    frames: kinematics.BodyFrames
    path_length: jnp.ndarray  # (18,) m
    muscle: muscles.MuscleDerivatives
    ligament_torques: jnp.ndarray  # (6,) N·m
    foot_forces: jnp.ndarray  # (2, 2) ground reaction on (foot_r, foot_l) fx, fy, N
    contact: contact.ContactForces  # every contact pair (platform and obstacles)
    generalized_forces: jnp.ndarray  # (9,) applied (muscles + ligaments + contact)


class _Mechanics(NamedTuple):
    """Everything of one evaluation that does not depend on the muscle states."""

    fj: kinematics.FrameJacobians
    terms: dynamics.RigidBodyTerms
    geometry: paths.PathGeometry
    ligament_torques: jnp.ndarray  # (6,) N·m
    ligament_forces: jnp.ndarray  # (n_q,) generalized
    contact: contact.ContactForces
    contact_forces: jnp.ndarray  # (n_q,) generalized


def _contacts(
    params: ModelParams,
    fj: kinematics.FrameJacobians,
    u: jnp.ndarray,
    obstacles,
    platform: bool = True,
) -> contact.ContactForces:
    """The contact forces at the bodies' poses and velocities (`contact.contact_forces`)."""
    origin, angle = fj.frames.origin, fj.frames.angle
    return contact.contact_forces(
        params.contact, origin, angle, fj.origin_jac @ u, fj.angle_jac @ u, obstacles, platform
    )


def _mechanics(
    params: ModelParams, q: jnp.ndarray, u: jnp.ndarray, obstacles, platform: bool = True
) -> _Mechanics:
    """`platform` False leaves the platform contacts out of `contact` and `contact_forces`
    (the stiff substep takes them from its contact linearisation instead)."""
    fj = kinematics.model_frame_jacobians(params, q, u)
    terms = dynamics.rigid_body_terms(params.tree, fj, u)
    geometry = paths.path_geometry(
        params.paths,
        fj.frames.origin,
        fj.frames.angle,
        fj.origin_jac,
        fj.angle_jac,
        q,
        u,
        paths.muscle_coordinates(params.tree, params.paths),
    )
    lig = ligaments.limit_forces(params.ligaments, q, u)
    cf = _contacts(params, fj, u, obstacles, platform=platform)
    return _Mechanics(
        fj=fj,
        terms=terms,
        geometry=geometry,
        ligament_torques=lig,
        ligament_forces=ligaments.ligament_generalized_forces(params.ligaments, lig, q.shape[0]),
        contact=cf,
        contact_forces=dynamics.point_force_to_generalized(
            fj, cf.body, cf.point[:, :2], cf.force[:, :2]
        ),
    )


def evaluate(
    params: ModelParams,
    y: Continuous,
    excitation: jnp.ndarray,
    obstacles: jnp.ndarray,
    psoas: jnp.ndarray,
) -> Evaluation:
    """State derivatives and the forces behind them at state y (excitations (18,) in [0, 1])."""
    mech = _mechanics(params, y.q, y.u, obstacles)
    md = muscles.muscle_dynamics(
        params.muscles, y.activation, y.fiber_length, excitation, mech.geometry.length, psoas
    )
    applied = (
        paths.path_generalized_forces(mech.geometry, md.tendon_force)
        + mech.ligament_forces
        + mech.contact_forces
    )
    udot = dynamics.accelerations(mech.terms, applied)
    return Evaluation(
        derivative=Continuous(y.u, udot, md.activation_dot, md.fiber_length_dot),
        frames=mech.fj.frames,
        path_length=mech.geometry.length,
        muscle=md,
        ligament_torques=mech.ligament_torques,
        foot_forces=contact.foot_ground_reactions(mech.contact)[:, :2],
        contact=mech.contact,
        generalized_forces=applied,
    )


# The contact Jacobians consider only this many obstacles, those nearest the foot spheres: an
# obstacle that touches no sphere has zero force and zero derivative, and two feet touch at
# most two obstacles at once on the seed's courses. (All 20 padded slots cost ~3 evaluations.)
NEAR_OBSTACLES = 2


def nearest_obstacles(
    params: ModelParams, origin: jnp.ndarray, angle: jnp.ndarray, obstacles: jnp.ndarray, n: int
) -> jnp.ndarray:
    """The n rows of `obstacles` (K, 3) nearest to any foot sphere's surface (padding last);
    obstacles are spheres centred on the ground plane z = 0, as `contact.contact_forces` has
    them."""
    centers = contact.sphere_centers(params.contact, origin, angle)  # (4, 3)
    obstacle_centers = jnp.concatenate([obstacles[:, :2], jnp.zeros_like(obstacles[:, :1])], -1)
    gap = (
        jnp.linalg.norm(obstacle_centers[:, None, :] - centers[None], axis=-1)
        - obstacles[:, None, 2]
        - params.contact.sphere_radius[None, :]
    )
    gap = jnp.where(obstacles[:, 2] > 0, jnp.min(gap, axis=1), jnp.inf)
    return obstacles[smallest_indices(gap, n)]


def smallest_indices(values: jnp.ndarray, n: int) -> jnp.ndarray:
    """Indices (n,) of the n smallest of `values` (K,), smallest first, the lower index first
    among equal values (as a stable argsort, or `lax.top_k` of −values, gives them).

    One minimum per index instead of a sort: the substep asks for the 2 nearest of 20 obstacle
    slots, for which XLA's CPU sort costs more than the whole obstacle contact model.
    """
    values = jnp.where(jnp.isnan(values), jnp.inf, values)  # never picks the same index twice
    index = jnp.arange(values.shape[0])
    taken = jnp.zeros(values.shape, bool)
    picks = []
    for _ in range(n):
        remaining = jnp.where(taken, jnp.inf, values)
        # the first untaken index holding the smallest remaining value (inf ties included)
        pick = jnp.argmax(~taken & (remaining == jnp.min(remaining)))
        picks.append(pick)
        taken = taken | (index == pick)
    return jnp.stack(picks)


class StiffTerms(NamedTuple):
    """What the stiff substep adds to `_Mechanics`."""

    stiffness: jnp.ndarray  # (n_q, n_q) ∂Q/∂q of contact and ligaments
    damping: jnp.ndarray  # (n_q, n_q) ∂Q/∂u of contact and ligaments
    platform_forces: jnp.ndarray  # (n_q,) generalized forces of the 4 platform contacts


def _contact_and_ligament_jacobians(
    params: ModelParams,
    mech: _Mechanics,
    q: jnp.ndarray,
    u: jnp.ndarray,
    obstacles,
    near_obstacles: int | None = NEAR_OBSTACLES,
) -> StiffTerms:
    """∂Q/∂q and ∂Q/∂u (n_q, n_q) of the contact and ligament generalized forces, and the
    platform contacts' generalized forces (the linearisation's own values: computing them
    again in `_mechanics` would double that part of the contact model's kernels).

    Contact: Q = Σ_c J_o,cᵀ F_c + J_θ,cᵀ (p_c − o_c) × F_c over the contacts c (force F_c at
    point p_c on body c, whose origin o_c and Jacobians J are held fixed: their own derivative
    is a geometric term of order force × lever, small next to the contact stiffness), over
    the `near_obstacles` obstacles nearest the feet (None: all of them). A contact's force and
    point depend only on its own body's pose and velocity, so their derivatives by the six
    rigid motions of that body (`contact.contact_tangents`, analytic) give every contact's,
    which the body Jacobians carry to the coordinates: the same matrices as differentiating Q
    along each of the n_q Jacobian columns, for 6 tangents instead of 2·n_q.
    Ligaments: each acts on its own coordinate, so one all-ones tangent gives the exact
    diagonals.
    """
    fj = mech.fj
    origin, angle = fj.frames.origin, fj.frames.angle
    origin_vel, omega = fj.origin_jac @ u, fj.angle_jac @ u
    if near_obstacles is not None and obstacles.shape[0] > near_obstacles:
        obstacles = nearest_obstacles(params, origin, angle, obstacles, near_obstacles)

    ct = contact.contact_tangents(params.contact, origin, angle, origin_vel, omega, obstacles)
    n_q = q.shape[0]
    # Each body's Jacobian rows (nb, 3, n_q): origin x, origin y, angle.
    body_rows = jnp.concatenate([fj.origin_jac, fj.angle_jac[:, None, :]], axis=1)
    # Each contact's wrench on its body w = (F_x, F_y, (p − o) × F) about the body origin,
    # and its derivatives (6, C, 3) by the body's six rigid motions (origin held fixed).
    lever = ct.point - origin[ct.body]  # (C, 2)
    wrench = jnp.concatenate([ct.force, kinematics.cross_z(lever, ct.force)[:, None]], -1)
    d_torque = kinematics.cross_z(ct.d_point, ct.force) + kinematics.cross_z(lever, ct.d_force)
    d_wrench = jnp.concatenate([ct.d_force, d_torque[..., None]], -1)
    platform_wrench = jnp.where(
        (np.arange(wrench.shape[0]) < contact.N_PLATFORM_CONTACTS)[:, None], wrench, 0.0
    )
    # Q = Σ_c B_cᵀ w_c with B_c the body Jacobian rows, so ∂Q/∂q = Σ_c B_cᵀ (∂w_c/∂pose) B_c
    # and ∂Q/∂u = Σ_c B_cᵀ (∂w_c/∂velocity) B_c. The contacts on one body share its rows B
    # and its six rigid motions, so their wrenches and wrench derivatives are summed per body
    # first (heel and toe bodies: 3 contacts each with the platform and two obstacles), and
    # each body's sum goes through its rows once. The platform's Q itself (the obstacles' come
    # from `_mechanics`) rides along as one more column of the same product. A foot's rows are
    # zero outside the coordinates of its leg and the pelvis, so the bodies are taken a foot
    # at a time on those columns only, and the blocks added into the n_q × n_q matrices at
    # their fixed positions.
    coordinates = kinematics.body_coordinates(params.tree)
    groups: dict[tuple[int, ...], list[int]] = {}
    for b in dict.fromkeys(ct.body.tolist()):
        groups.setdefault(tuple(coordinates[b].tolist()), []).append(b)
    slots, values = [], []  # flat (row, column) positions in [K | D | Q] and their values
    for cols, bodies in groups.items():
        cols, s = np.asarray(cols), len(cols)
        products = None
        for b in bodies:
            on_body = np.flatnonzero(ct.body == b)
            # sums of a few static rows, added out (a reduction would be a kernel of its own)
            d_w = functools.reduce(operator.add, [d_wrench[:, c] for c in on_body])
            d_w = d_w.reshape(2, 3, 3)  # (pose/velocity m, motion k, wrench component a)
            w = functools.reduce(operator.add, [platform_wrench[c] for c in on_body])
            jac = body_rows[b][:, cols]  # (3, s)
            pose_and_velocity = jnp.einsum("mka,kj->amj", d_w, jac).reshape(3, 2 * s)
            columns = jnp.concatenate([pose_and_velocity, w[:, None]], axis=-1)
            block = jnp.einsum("ai,ax->ix", jac, columns)  # (s, 2 s + 1)
            products = block if products is None else products + block
        targets = np.concatenate([cols, n_q + cols, [2 * n_q]])  # into (n_q, 2 n_q + 1)
        slots.append((cols[:, None] * (2 * n_q + 1) + targets[None, :]).ravel())
        values.append(products.reshape(-1))
    products = add_at(np.concatenate(slots), jnp.concatenate(values), n_q * (2 * n_q + 1)).reshape(
        n_q, 2 * n_q + 1
    )
    k_contact, d_contact = products[:, :n_q], products[:, n_q : 2 * n_q]
    platform_forces = products[:, -1]

    def ligament_q(qq: jnp.ndarray) -> jnp.ndarray:
        lig = ligaments.limit_forces(params.ligaments, qq, u)
        return ligaments.ligament_generalized_forces(params.ligaments, lig, n_q)

    def ligament_u(uu: jnp.ndarray) -> jnp.ndarray:
        lig = ligaments.limit_forces(params.ligaments, q, uu)
        return ligaments.ligament_generalized_forces(params.ligaments, lig, n_q)

    ones = jnp.ones_like(q)
    k_lig = jax.jvp(ligament_q, (q,), (ones,))[1]
    d_lig = jax.jvp(ligament_u, (u,), (ones,))[1]
    return StiffTerms(k_contact + jnp.diag(k_lig), d_contact + jnp.diag(d_lig), platform_forces)


def imex_substep(
    params: ModelParams,
    y: Continuous,
    excitation: jnp.ndarray,
    obstacles: jnp.ndarray,
    psoas: jnp.ndarray,
    h: jnp.ndarray,
    stiff: bool = False,
) -> Continuous:
    """One IMEX substep of h seconds (one evaluation of the kinematics and path geometry).

    Muscle states implicitly (`implicit_muscles`: backward Euler at the path lengths
    extrapolated to t + h with the path speeds), then the multibody by symplectic Euler with
    the end-of-substep tendon forces and the start-of-substep mass matrix, bias, ligament and
    contact forces: u′ = u + h M⁻¹ Q, q′ = q + h u′.

    `stiff`: the muscle and ligament forces' stiffness K = ∂Q/∂q and the ligaments' damping
    D = ∂Q/∂u enter linearly implicitly (linearised backward Euler in u, q′ = q + h u′):
    (M − h²K − hD) Δu = h (Q + hK u). The muscles' K is −(∂L_f/∂q)ᵀ diag(dF/dL′) ∂L/∂q with
    dF/dL′ the tendon force's sensitivity over the substep (`tendon_force_and_stiffness`); its
    hK u term is already in Q through the extrapolated path lengths. This damps the fast
    tendon–foot and ligament modes instead of letting a 1 ms step misintegrate them.
    """
    # stiff: the platform contacts come with their Jacobians below
    mech = _mechanics(params, y.q, y.u, obstacles, platform=not stiff)
    path_length = mech.geometry.length + h * mech.geometry.speed
    activation = implicit_muscles.activation_step(params.muscles, y.activation, excitation, h)
    fiber_length = implicit_muscles.fiber_length_step(
        params.muscles, activation, y.fiber_length, excitation, path_length, psoas, h
    )
    if stiff:
        tendon_force, stiffness = implicit_muscles.tendon_force_and_stiffness(
            params.muscles, activation, fiber_length, excitation, path_length, psoas, h
        )
    else:
        tendon_force = muscles.muscle_dynamics(
            params.muscles, activation, fiber_length, excitation, path_length, psoas
        ).tendon_force
    applied = (
        paths.path_generalized_forces(mech.geometry, tendon_force)
        + mech.ligament_forces
        + mech.contact_forces
    )
    if not stiff:
        u = y.u + h * dynamics.accelerations(mech.terms, applied)
        return Continuous(q=y.q + h * u, u=u, activation=activation, fiber_length=fiber_length)

    k_other, d_other, platform_forces = _contact_and_ligament_jacobians(
        params, mech, y.q, y.u, obstacles
    )
    g = mech.geometry
    columns = paths.muscle_coordinates(params.tree, params.paths)
    # −K_muscles, each muscle's outer product on its own coordinates
    muscle_stiffness = dynamics.weighted_gram(g.force_jac, g.length_jac, stiffness, columns)
    matrix = mech.terms.mass_matrix + h * h * muscle_stiffness - (h * h * k_other + h * d_other)
    rhs = h * (mech.terms.passive_forces + applied + platform_forces + h * k_other @ y.u)
    if minor_vmap.tracing_batch():
        # Stored: the unrolled elimination reads each entry in several of XLA's CPU fusions,
        # and each would otherwise recompute it from its sums of block products (batched
        # 1.06-1.07x; one runner 1.01x with other round-off, so it keeps its program).
        matrix = computed_once(matrix)
    u = y.u + linear_solve.solve_structured(matrix, rhs, stiff_matrix_pattern(params))
    return Continuous(q=y.q + h * u, u=u, activation=activation, fiber_length=fiber_length)


def stiff_matrix_pattern(params: ModelParams) -> np.ndarray:
    """(n_q, n_q) bool, fixed while tracing: where the stiff substep's matrix can be nonzero.
    The mass matrix and the contacts couple the coordinates of each body's joints from ground
    (`kinematics.body_coordinates`), a muscle those its path depends on
    (`paths.muscle_coordinates`), a ligament only its own: one leg's coordinates never meet
    the other's."""
    n_q = len(COORDINATES)
    pattern = np.eye(n_q, dtype=bool)
    sets = kinematics.body_coordinates(params.tree) + paths.muscle_coordinates(
        params.tree, params.paths
    )
    for cols in sets:
        pattern[np.ix_(cols, cols)] = True
    return pattern


def derivatives(
    params: ModelParams,
    y: Continuous,
    excitation: jnp.ndarray,
    obstacles: jnp.ndarray,
    psoas: jnp.ndarray,
) -> Continuous:
    """ẏ = (q̇, u̇, ȧ, l̇) (see `evaluate`)."""
    return evaluate(params, y, excitation, obstacles, psoas).derivative


def ligament_torques(params: ModelParams, q: jnp.ndarray, u: jnp.ndarray) -> jnp.ndarray:
    """(6,) ligament torques in LIGAMENTS order, N·m."""
    return ligaments.limit_forces(params.ligaments, q, u)


class KinematicOutputs(NamedTuple):
    """What the observation needs beyond q and u (ground frame)."""

    com_position: jnp.ndarray  # (2,) m
    com_velocity: jnp.ndarray  # (2,) m/s
    obs_body_xy: jnp.ndarray  # (7, 2) origins of OBS_BODIES, m


def kinematic_outputs(params: ModelParams, q: jnp.ndarray, u: jnp.ndarray) -> KinematicOutputs:
    tree = params.tree

    def com(qq: jnp.ndarray) -> tuple[jnp.ndarray, jnp.ndarray]:
        frames = kinematics.model_frames(params, qq)
        return kinematics.system_com(tree, kinematics.com_positions(tree, frames)), frames.origin

    (com_p, origin), (com_v, _) = jax.jvp(com, (q,), (u,))
    return KinematicOutputs(com_p, com_v, origin[_OBS_BODY_INDEX])


class Reports(NamedTuple):
    """Per-state quantities the Engine protocol reports every step (ground frame)."""

    body_origin: jnp.ndarray  # (13, 2) m
    body_angle: jnp.ndarray  # (13,) rad
    ligament_torques: jnp.ndarray  # (6,) N·m
    foot_forces: jnp.ndarray  # (2, 2) N


def reports(params: ModelParams, q: jnp.ndarray, u: jnp.ndarray, obstacles) -> Reports:
    """Body poses, ligament torques and the platform's reaction on each foot at (q, u).

    Only the parts of an evaluation these need (frames with their velocities, ligaments,
    contact): no muscle or path geometry, which cost as much again per step and which only
    a drawing asks for (`muscle_path_points`)."""
    fj = kinematics.model_frame_jacobians(params, q, u)
    return Reports(
        body_origin=fj.frames.origin,
        body_angle=fj.frames.angle,
        ligament_torques=ligaments.limit_forces(params.ligaments, q, u),
        foot_forces=contact.foot_ground_reactions(_contacts(params, fj, u, obstacles))[:, :2],
    )


def muscle_path_points(params: ModelParams, q: jnp.ndarray) -> tuple[jnp.ndarray, jnp.ndarray]:
    """Every muscle's path points (18, P, 2) m in ground and which are on the path (18, P)."""
    frames = kinematics.model_frames(params, q)
    points, mask = paths.path_points(params.paths, frames.origin, frames.angle, q)
    return points[..., :2], mask


def evaluate_with_jacobian(
    params: ModelParams,
    y: Continuous,
    excitation: jnp.ndarray,
    obstacles: jnp.ndarray,
    psoas: jnp.ndarray,
) -> tuple[Continuous, StiffJacobian]:
    """ẏ and the stiff Jacobian (see `integrate.StiffJacobian`) at y, sharing the kinematics.

    The muscle diagonals are the muscle model differentiated at fixed path lengths (one
    all-ones tangent per state gives the exact diagonal: muscles do not share states).
    """
    ev = evaluate(params, y, excitation, obstacles, psoas)

    def muscle_rates(a: jnp.ndarray, lm: jnp.ndarray) -> muscles.MuscleDerivatives:
        return muscles.muscle_dynamics(params.muscles, a, lm, excitation, ev.path_length, psoas)

    ones, zeros = jnp.ones_like(y.activation), jnp.zeros_like(y.activation)
    _, d_by_a = jax.jvp(muscle_rates, (y.activation, y.fiber_length), (ones, zeros))
    _, d_by_l = jax.jvp(muscle_rates, (y.activation, y.fiber_length), (zeros, ones))
    jac = StiffJacobian(activation=d_by_a.activation_dot, fiber_length=d_by_l.fiber_length_dot)
    return ev.derivative, jac
