"""Hunt–Crossley foot contact exactly as Simbody's `HuntCrossleyForce` (OpenSim 4.6) computes it.

Contact sets, as the OpenSim engine builds them:

* `foot_r` / `foot_l` (model definition): the ground half-space `platform` (outward normal +y)
  with that foot's heel and toe spheres;
* one set per obstacle (`l2run.engines.opensim_engine`, osim-rl 1.5): a sphere fixed to the
  ground at (x, y, 0) with radius r, with the four foot spheres; stiffness 1e6/r, dissipation
  1e-5, no friction. Obstacles are per-environment input rows (x, y, r); rows with r <= 0
  (padding, `NO_OBSTACLE`) never touch anything.

Per penetrating pair (Simbody `HuntCrossleyForceImpl::calcForce`, surfaces 1 and 2):

    k_i = stiffness_i^(2/3) (what Simbody stores per surface),
    s1 = k2/(k1+k2),  k = k1 s1,  c = c1 s1 + c2 s2,  R = effective radius,
    f_H = 4/3 k d sqrt(R k d),   f = f_H (1 + 3/2 c v_n)        (v_n: approach speed)
    friction f (min(v_s/v_t, 1)(μ_d + 2(μ_s − μ_d)/(1 + (v_s/v_t)²)) + μ_v v_s) along the slip,

applied at the contact point (moved by d(1/2 − s1) along the normal) to the material point of
each body there. Two Simbody details matter for exactness:

* ``if (f <= 0) return;`` — a contact that would pull ends the loop over *the rest of its set*
  (not just itself). A foot set's contacts come in Simbody's sweep-and-prune order: along the
  axis (x, y or z) on which the set's bounding-sphere centres vary most (sum of |c − mean|),
  spheres sorted by centre − radius (ties keep set order). We reproduce that order. In an
  obstacle set f <= 0 needs an approach speed below −1/(1.5·1e-5) ≈ −6.7e4 m/s, so there the
  order cannot matter and is not modelled.
* the platform's orientation (0, 0, −1.5707963267949) is not exactly −π/2; we use the same
  rotation, so its normal keeps the same ~3e-15 tilt.

The output is the force on each foot-sphere body at its contact point (ground frame); the ground
receives the opposite. `contact_tangents` adds the forces' and points' analytic derivatives by
each contact's body motion, which the stiff substep's contact linearisation needs.
`contact_wrenches` sums the forces per body (force, torque about the origin) and the dynamics
map point forces to generalized forces with the point Jacobians (planar model: only x, y of
force and point matter there; z enters depths and normals, since the feet sit at z ≈ ±0.09 m
while obstacles are centred on z = 0).
"""

from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp
import numpy as np

from l2run.engines.jax.indexed_writes import add_at, known_while_tracing, short_sum
from l2run.engines.jax.kinematics import cos_sin, perp
from l2run.engines.jax.paths import _body_z
from l2run.engines.jax.static import Static, concrete
from l2run.model.names import BODIES, FOOT_CONTACTS

# Obstacle contact (osim-rl 1.5, as `l2run.engines.opensim_engine` builds it).
OBSTACLE_STIFFNESS_TIMES_RADIUS = 1.0e6  # N/m^2 · m: stiffness = this / r
OBSTACLE_DISSIPATION = 1.0e-5  # s/m
# osim-rl's obstacle contact sets have no friction (static, dynamic and viscous 0): their
# pairs skip the friction terms, which would only add exact zeros.
OBSTACLE_FRICTION = False
HERTZ_FACTOR = 4.0 / 3.0
DISSIPATION_FACTOR = 1.5
HERTZ_EXPONENT = 1.5  # f_H ∝ d^(3/2)
# Rows of `contact_forces` before the obstacles': foot_r heel, toe; foot_l heel, toe.
N_PLATFORM_CONTACTS = 4


class ContactParams(NamedTuple):
    """Foot spheres, the platform half-space, the foot contact sets and their materials."""

    sphere_body: Static  # (4,) int BODIES index of each foot sphere's body
    sphere_local: jnp.ndarray  # (4, 3) m centre in the body frame
    sphere_z: jnp.ndarray  # (4,) m ground z of the centre (constant, planar model)
    sphere_radius: jnp.ndarray  # (4,) m
    plane_rotation: jnp.ndarray  # (3, 3) half-space frame in ground (its -x is the normal)
    plane_origin: jnp.ndarray  # (3,) m
    set_spheres: Static  # (2, 2) int: foot sphere indices of foot_r, foot_l (set order)
    plane_material: jnp.ndarray  # (2, 5): k^(2/3), c, μs, μd, μv of the half-space per foot set
    sphere_material: jnp.ndarray  # (2, 2, 5): same for each sphere of each foot set
    transition_velocity: jnp.ndarray  # (2,) m/s per foot set
    body_z: jnp.ndarray  # (nb,) m ground z of every body origin (for torques about it)


def _rotation_xyz(angles) -> np.ndarray:
    """Body-fixed X-Y-Z rotation matrix (Simbody's BodyRotationSequence)."""
    (cx, cy, cz), (sx, sy, sz) = np.cos(angles), np.sin(angles)
    rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    return rx @ ry @ rz


def compile_contact(definition) -> ContactParams:
    """Contact arrays (numpy) from a `ModelDefinition` (foot sets in FOOT_CONTACTS order)."""
    geometry = {g.name: g for g in definition.contact_geometry}
    forces = {f.name: f for f in definition.contact_forces}
    body_z = _body_z(definition)
    spheres = [g for g in definition.contact_geometry if g.kind == "ContactSphere"]
    if len(spheres) != 4 or any(s.body == definition.ground for s in spheres):
        raise ValueError("expected four foot contact spheres on bodies")
    for s in spheres:
        if s.orientation[0] != 0.0 or s.orientation[1] != 0.0:
            raise ValueError(f"sphere {s.name}: orientation must be about z")
    sphere_index = {s.name: i for i, s in enumerate(spheres)}
    planes, set_spheres, plane_mat, sphere_mat, transition = [], [], [], [], []
    for name in FOOT_CONTACTS:
        f = forces[name]
        members = [geometry[g] for g in f.geometry]
        halfspaces = [g for g in members if g.kind == "ContactHalfSpace"]
        balls = [g for g in members if g.kind == "ContactSphere"]
        if len(halfspaces) != 1 or len(balls) != 2 or members[0] is not halfspaces[0]:
            raise ValueError(f"{name}: expected a half-space followed by two spheres")
        if halfspaces[0].body != definition.ground:
            raise ValueError(f"{name}: the half-space must be fixed to the ground")
        planes.append(halfspaces[0])
        set_spheres.append([sphere_index[b.name] for b in balls])
        material = [_stored_stiffness(f.stiffness), f.dissipation, f.static_friction]
        material.append(f.dynamic_friction)
        material.append(f.viscous_friction)
        plane_mat.append(material)
        sphere_mat.append([material, material])
        transition.append(f.transition_velocity)
    if planes[0] is not planes[1] and planes[0] != planes[1]:
        raise ValueError("both foot sets must use the same half-space")
    plane = planes[0]
    return ContactParams(
        sphere_body=Static(np.array([BODIES.index(s.body) for s in spheres], dtype=np.int32)),
        sphere_local=np.array([s.location for s in spheres], dtype=float),
        sphere_z=np.array([body_z[s.body] + s.location[2] for s in spheres]),
        sphere_radius=np.array([s.radius for s in spheres], dtype=float),
        plane_rotation=_rotation_xyz(np.array(plane.orientation, dtype=float)),
        plane_origin=np.array(plane.location, dtype=float),
        set_spheres=Static(np.array(set_spheres, dtype=np.int32)),
        plane_material=np.array(plane_mat, dtype=float),
        sphere_material=np.array(sphere_mat, dtype=float),
        transition_velocity=np.array(transition, dtype=float),
        body_z=np.array([body_z[b] for b in BODIES]),
    )


# --- pair force ------------------------------------------------------------------------------


def _stored_stiffness(k):
    """What Simbody keeps for a surface of stiffness k (N/m^2): std::pow(k, 2/3)."""
    return k ** (2.0 / 3.0)


def _combined(m1: jnp.ndarray, m2: jnp.ndarray):
    """Simbody's material combination of surfaces 1 and 2 ((..., 5) rows k, c, μs, μd, μv).

    Simbody stores each surface's stiffness as k^(2/3) (`HuntCrossleyForceImpl::Parameters`)
    and combines those: the rows here hold the stored values (see `_stored_stiffness`)."""
    k1, k2 = m1[..., 0], m2[..., 0]
    s1 = k2 / (k1 + k2)
    s2 = 1 - s1
    k = k1 * s1
    c = m1[..., 1] * s1 + m2[..., 1] * s2

    def harmonic(a, b):
        either = (a != 0) | (b != 0)
        return jnp.where(either, 2 * a * b / jnp.where(either, a + b, 1.0), 0.0)

    us = harmonic(m1[..., 2], m2[..., 2])
    ud = harmonic(m1[..., 3], m2[..., 3])
    uv = harmonic(m1[..., 4], m2[..., 4])
    return s1, k, c, us, ud, uv


class _Pairs(NamedTuple):
    """Contact pairs (shape (...) each) between a fixed surface 1 and a foot sphere 2."""

    touching: jnp.ndarray  # (...) bool
    depth: jnp.ndarray  # (...) m (meaningful where touching)
    normal: jnp.ndarray  # (..., 3) unit, from surface 1 towards surface 2
    radius: jnp.ndarray  # (...) m, effective
    s1: jnp.ndarray  # (...) surface 1's share of the deformation (`_combined`)
    point: jnp.ndarray  # (..., 3) m: the application point
    body_origin: jnp.ndarray  # (..., 2) m: origin of the sphere's body
    body_vel: jnp.ndarray  # (..., 2) m/s
    body_omega: jnp.ndarray  # (...) rad/s
    material: tuple  # `_combined`'s (k, c, μs, μd, μv) after s1, each (...)
    transition_velocity: jnp.ndarray  # (...) m/s


def _pairs(
    touching, depth, normal, location, radius, m1, m2, transition_velocity, b_origin, b_vel, b_omega
) -> _Pairs:
    """Pairs from Simbody's contact geometry: `location` is the midpoint of the overlap; the
    force acts at the point moved by d(1/2 − s1) along the normal."""
    s1, *material = _combined(m1, m2)
    return _Pairs(
        touching=touching,
        depth=depth,
        normal=normal,
        radius=radius,
        s1=s1,
        point=location + (depth * (0.5 - s1))[..., None] * normal,
        body_origin=b_origin,
        body_vel=b_vel,
        body_omega=b_omega,
        material=tuple(material),
        transition_velocity=transition_velocity,
    )


class _PairForce(NamedTuple):
    """Hunt–Crossley force of each pair and the intermediate values its derivatives need."""

    force: jnp.ndarray  # (..., 3) N on surface 2 (0 where not touching)
    f: jnp.ndarray  # (...) N normal force (<= 0: pulls)
    f_hertz: jnp.ndarray  # (...) N elastic part
    v: jnp.ndarray  # (..., 3) m/s: v1 − v2 at the point
    v_n: jnp.ndarray  # (...) m/s approach speed
    v_t: jnp.ndarray  # (..., 3) m/s slip velocity
    v_slip: jnp.ndarray  # (...) m/s |v_t|
    per_speed: jnp.ndarray  # (...) s/m: friction coefficient per unit slip speed


def _pair_force(pairs: _Pairs, friction: bool = True) -> _PairForce:
    """Force of each pair (`_Pairs`); meaningful where touching (elsewhere force and f are 0).

    `friction` False: the pairs' friction coefficients are all 0 (the obstacles'), so the
    force is the normal force alone; the friction terms, which would add exact zeros, are
    skipped (`v_t`, `v_slip` and `per_speed` then come back as zeros)."""
    k, c, us, ud, uv = pairs.material
    d = jnp.where(pairs.touching, pairs.depth, 1.0)  # keeps sqrt's gradient finite off contact
    f_h = jnp.where(pairs.touching, HERTZ_FACTOR * k * d * jnp.sqrt(pairs.radius * k * d), 0.0)
    normal = pairs.normal
    # surface 1 is fixed: v1 − v2 = −(velocity of the sphere body's material point there)
    v = -_body_point_velocity(pairs.point, pairs.body_origin, pairs.body_vel, pairs.body_omega)
    v_n = _dot(v, normal)
    f = f_h * (1 + DISSIPATION_FACTOR * c * v_n)
    if not friction:
        zero = jnp.zeros_like(f)
        return _PairForce(f[..., None] * normal, f, f_h, v, v_n, jnp.zeros_like(v), zero, zero)
    v_t = v - v_n[..., None] * normal
    slip_sq = _dot(v_t, v_t)
    slipping = slip_sq > 0.0
    v_slip = jnp.where(slipping, jnp.sqrt(jnp.where(slipping, slip_sq, 1.0)), 0.0)
    v_r = v_slip / pairs.transition_velocity
    # Simbody: F_t = f (min(v_r, 1)(μd + 2(μs − μd)/(1 + v_r²)) + μv v_s) v_t / v_s. Since
    # min(v_r, 1)/v_s = 1/max(v_s, v_trans), write it without dividing by v_s: the same force,
    # and smooth (with its exact gradient) through zero slip, where Simbody applies none.
    per_speed = (ud + 2 * (us - ud) / (1 + v_r * v_r)) / jnp.maximum(
        v_slip, pairs.transition_velocity
    )
    force = f[..., None] * normal + (f * (per_speed + uv))[..., None] * v_t
    return _PairForce(force, f, f_h, v, v_n, v_t, v_slip, per_speed)


def _body_point_velocity(point, origin_xy, vel_xy, omega):
    """Ground velocity (..., 3) of the material point of a planar body located at `point`."""
    r = point[..., :2] - origin_xy
    vx = vel_xy[..., 0] - omega * r[..., 1]
    vy = vel_xy[..., 1] + omega * r[..., 0]
    return jnp.stack([vx, vy, jnp.zeros_like(vx)], axis=-1)


# --- the contact model -----------------------------------------------------------------------


class ContactForces(NamedTuple):
    """Forces on the foot-sphere bodies (the ground takes the opposite), ground frame.

    C = 4 platform contacts (foot_r heel, toe; foot_l heel, toe, in set order) followed by
    4 per obstacle (r_heel, r_toe, l_heel, l_toe). Zero force where there is no contact."""

    force: jnp.ndarray  # (C, 3) N
    point: jnp.ndarray  # (C, 3) m, application point in ground
    body: jnp.ndarray  # (C,) int BODIES index of the body the force acts on
    contact_set: jnp.ndarray  # (C,) int: 0 foot_r, 1 foot_l, 2 + k obstacle k
    normal_force: jnp.ndarray  # (C,) N: Hunt–Crossley f of each touching pair (<= 0: pulls;
    #                            such a pair and, in a foot set, the ones after it apply nothing)


def sphere_centers(p: ContactParams, origin: jnp.ndarray, angle: jnp.ndarray) -> jnp.ndarray:
    """Foot sphere centres (4, 3) m in ground from body poses (nb, 2), (nb,)."""
    body = concrete(p.sphere_body)
    o, a = origin[body], angle[body]
    c, s = cos_sin(a)
    lx, ly = p.sphere_local[:, 0], p.sphere_local[:, 1]
    xy = o + jnp.stack([c * lx - s * ly, s * lx + c * ly], axis=-1)
    return jnp.concatenate([xy, p.sphere_z[:, None]], axis=-1)


def contact_forces(
    p: ContactParams,
    origin: jnp.ndarray,
    angle: jnp.ndarray,
    origin_vel: jnp.ndarray,
    omega: jnp.ndarray,
    obstacles: jnp.ndarray,
    platform: bool = True,
) -> ContactForces:
    """All Hunt–Crossley contact forces.

    origin (nb, 2) m, angle (nb,) rad: body poses in ground (BODIES order); origin_vel (nb, 2)
    m/s and omega (nb,) rad/s: their velocities; obstacles (K, 3) rows (x, y, r) m.
    `platform` False leaves out the 4 platform contacts (the rows are then the obstacles' only).
    """
    centers = sphere_centers(p, origin, angle)  # (4, 3)
    body = concrete(p.sphere_body)
    b_origin, b_vel, b_omega = origin[body], origin_vel[body], omega[body]
    obstacle_part = _obstacle_contacts(p, centers, b_origin, b_vel, b_omega, obstacles)
    if not platform:
        return obstacle_part
    platform_part = _platform_contacts(p, centers, b_origin, b_vel, b_omega)
    # the body and set indices stay numpy (structure known while tracing)
    return ContactForces(
        *(
            np.concatenate(rows) if known_while_tracing(rows[0]) else jnp.concatenate(rows)
            for rows in zip(platform_part, obstacle_part, strict=True)
        )
    )


def _platform_pairs(
    p: ContactParams,
    centers: jnp.ndarray,
    b_origin: jnp.ndarray,
    b_vel: jnp.ndarray,
    b_omega: jnp.ndarray,
) -> _Pairs:
    """The platform (half-space on ground) against the two spheres of each foot set: (2, 2)
    pairs in FOOT_CONTACTS and set order.

    centers (4, 3) m: the foot spheres' centres; b_origin (4, 2), b_vel (4, 2), b_omega (4,):
    pose and velocity of each sphere's body."""
    rot, t0 = p.plane_rotation, p.plane_origin
    sph = concrete(p.set_spheres)  # (2, 2)
    ctr, rad = centers[sph], p.sphere_radius[sph]  # (2, 2, 3), (2, 2)
    local = (ctr - t0) @ rot  # R^T (p − t): sphere centre in the half-space frame
    depth = rad + local[..., 0]
    normal = jnp.broadcast_to(-rot[:, 0], ctr.shape)  # R·(−1, 0, 0): the half-space normal
    loc_plane = jnp.stack([depth / 2, local[..., 1], local[..., 2]], axis=-1)
    m_plane = jnp.broadcast_to(p.plane_material[:, None, :], p.sphere_material.shape)
    return _pairs(
        depth > 0,
        depth,
        normal,
        loc_plane @ rot.T + t0,
        rad,
        m_plane,
        p.sphere_material,
        p.transition_velocity[:, None],
        b_origin[sph],
        b_vel[sph],
        b_omega[sph],
    )


def _platform_applied(
    p: ContactParams, centers: jnp.ndarray, pairs: _Pairs, f: jnp.ndarray
) -> jnp.ndarray:
    """Which platform pairs (2, 2) apply their force: touching, not pulling, and not after a
    pulling pair in Simbody's sweep order within the set (the module docstring)."""
    t0 = p.plane_origin
    sph = concrete(p.set_spheres)
    ctr, rad = centers[sph], p.sphere_radius[sph]
    # sweep axis: largest spread of the bounding-sphere centres (the platform's is its
    # origin), then spheres by centre − radius along it
    all_centres = jnp.concatenate([jnp.broadcast_to(t0, (2, 1, 3)), ctr], axis=1)  # (2, 3, 3)
    spread = jnp.sum(jnp.abs(all_centres - jnp.mean(all_centres, axis=1, keepdims=True)), axis=1)
    # Each set's axis and order picked by selects, not gathers: in a batch every runner picks
    # its own, which a gather on the runners-last layout fetches lane by lane.
    x_widest = spread[:, 0] > spread[:, 1]
    widest = jnp.where(x_widest, spread[:, 0], spread[:, 1])
    z_widest = spread[:, 2] > widest
    along = jnp.where(
        z_widest[:, None], ctr[..., 2], jnp.where(x_widest[:, None], ctr[..., 0], ctr[..., 1])
    )
    start = along - rad
    second_first = start[:, 1] < start[:, 0]  # stable sort: ties keep set order
    pulls = pairs.touching & (f <= 0)
    first_pulls = jnp.where(second_first, pulls[:, 1], pulls[:, 0])
    applied = pairs.touching & ~pulls
    # the contact after a pulling one is never reached: the second of the set's order
    other = jnp.stack([second_first, ~second_first], axis=1)
    blocked_other = other & first_pulls[:, None]
    return applied & ~blocked_other


def _platform_contacts(
    p: ContactParams,
    centers: jnp.ndarray,
    b_origin: jnp.ndarray,
    b_vel: jnp.ndarray,
    b_omega: jnp.ndarray,
) -> ContactForces:
    """The platform's 4 contact rows (arguments as `_platform_pairs`)."""
    pairs = _platform_pairs(p, centers, b_origin, b_vel, b_omega)
    pf = _pair_force(pairs)
    applied = _platform_applied(p, centers, pairs, pf.f)
    return ContactForces(
        force=jnp.where(applied[..., None], pf.force, 0.0).reshape(N_PLATFORM_CONTACTS, 3),
        point=pairs.point.reshape(N_PLATFORM_CONTACTS, 3),
        body=concrete(p.sphere_body)[concrete(p.set_spheres)].reshape(N_PLATFORM_CONTACTS),
        contact_set=np.repeat(np.arange(2), 2),
        normal_force=pf.f.reshape(N_PLATFORM_CONTACTS),
    )


def _obstacle_pairs(
    p: ContactParams,
    centers: jnp.ndarray,
    b_origin: jnp.ndarray,
    b_vel: jnp.ndarray,
    b_omega: jnp.ndarray,
    obstacles: jnp.ndarray,
) -> _Pairs:
    """Each obstacle sphere (on ground) against the four foot spheres: (K, 4) pairs
    (arguments as `_platform_pairs`; obstacles (K, 3) rows (x, y, r) m)."""
    obstacles = jnp.asarray(obstacles)
    n_obs = obstacles.shape[0]
    present = obstacles[:, 2] > 0
    r_obs = jnp.where(present, obstacles[:, 2], 1.0)
    o_ctr = jnp.stack([obstacles[:, 0], obstacles[:, 1], jnp.zeros(n_obs, obstacles.dtype)], -1)
    delta = centers[None, :, :] - o_ctr[:, None, :]  # (K, 4, 3) obstacle → foot sphere
    dist_sq = _dot(delta, delta)
    r_f = p.sphere_radius[None, :]
    reach = r_obs[:, None] + r_f
    touching = present[:, None] & (dist_sq < reach * reach) & (dist_sq > 0)
    dist = jnp.sqrt(jnp.where(touching, dist_sq, 1.0))
    depth = jnp.where(touching, reach - dist, 0.0)
    normal = delta / dist[..., None]
    location = o_ctr[:, None, :] + (r_obs[:, None] - depth / 2)[..., None] * normal
    radius = r_obs[:, None] * r_f / (r_obs[:, None] + r_f)
    k_obs = _stored_stiffness(OBSTACLE_STIFFNESS_TIMES_RADIUS / r_obs)
    zero = jnp.zeros_like(k_obs)
    material = jnp.stack([k_obs, OBSTACLE_DISSIPATION + zero, zero, zero, zero], -1)
    material = jnp.broadcast_to(material[:, None, :], (n_obs, 4, 5))
    shape = (n_obs, 4)
    return _pairs(
        touching,
        depth,
        normal,
        location,
        radius,
        material,
        material,
        jnp.ones(shape, obstacles.dtype),
        jnp.broadcast_to(b_origin, (*shape, 2)),
        jnp.broadcast_to(b_vel, (*shape, 2)),
        jnp.broadcast_to(b_omega, shape),
    )


def _obstacle_applied(pairs: _Pairs, f: jnp.ndarray) -> jnp.ndarray:
    """Which obstacle pairs (K, 4) apply their force: touching and not pulling (no order
    matters there: the module docstring)."""
    return pairs.touching & (f > 0)


def _obstacle_contacts(
    p: ContactParams,
    centers: jnp.ndarray,
    b_origin: jnp.ndarray,
    b_vel: jnp.ndarray,
    b_omega: jnp.ndarray,
    obstacles: jnp.ndarray,
) -> ContactForces:
    """The obstacles' 4 contact rows each (arguments as `_obstacle_pairs`)."""
    pairs = _obstacle_pairs(p, centers, b_origin, b_vel, b_omega, obstacles)
    pf = _pair_force(pairs, friction=OBSTACLE_FRICTION)
    n_obs = pairs.touching.shape[0]
    o_force = jnp.where(_obstacle_applied(pairs, pf.f)[..., None], pf.force, 0.0)
    return ContactForces(
        force=o_force.reshape(-1, 3),
        point=pairs.point.reshape(-1, 3),
        body=np.tile(concrete(p.sphere_body), n_obs),
        contact_set=2 + np.repeat(np.arange(n_obs), 4),
        normal_force=pf.f.reshape(-1),
    )


# --- first derivatives by the bodies' motions ------------------------------------------------

# Rigid motions of a body as tangents of (origin, angle, origin velocity, angular velocity):
# translations along x and y, a rotation about the origin, then the same three as velocities.
# A contact's force and point depend only on its own body's pose and velocity, so these six
# tangents give every contact's first derivatives.
N_BODY_TANGENTS = 6
_TANGENTS = np.eye(N_BODY_TANGENTS)
_T_ORIGIN, _T_ANGLE, _T_VEL, _T_OMEGA = (
    _TANGENTS[:, 0:2],
    _TANGENTS[:, 2],
    _TANGENTS[:, 3:5],
    _TANGENTS[:, 5],
)


class ContactTangents(NamedTuple):
    """In-plane contact forces and points (rows as `ContactForces`) with their derivatives by
    the six rigid motions of each contact's own body (`N_BODY_TANGENTS`), ground frame."""

    force: jnp.ndarray  # (C, 2) N
    point: jnp.ndarray  # (C, 2) m
    body: jnp.ndarray  # (C,) int BODIES index of the body the force acts on
    d_force: jnp.ndarray  # (6, C, 2) N per unit tangent (m, rad, m/s, rad/s)
    d_point: jnp.ndarray  # (6, C, 2) m per unit tangent; 0 where the pair does not touch


def _per_tangent(basis: np.ndarray, n_pair_dims: int, dtype) -> jnp.ndarray:
    """A (6, k) or (6,) tangent basis shaped to broadcast against (6, *pairs, k) arrays of
    `dtype` (a float64 numpy constant would promote a float32 model's arrays)."""
    extra = basis.shape[1:]
    return jnp.asarray(basis.reshape((N_BODY_TANGENTS,) + (1,) * n_pair_dims + extra), dtype)


def _in_space(v: jnp.ndarray) -> jnp.ndarray:
    """In-plane vectors (..., 2) as 3-D vectors with z = 0."""
    return jnp.concatenate([v, jnp.zeros_like(v[..., :1])], axis=-1)


def _dot(a: jnp.ndarray, b: jnp.ndarray) -> jnp.ndarray:
    """Dot products over the last axis (a few components)."""
    return short_sum(a * b, axis=-1)


def _pair_force_tangents(
    pairs: _Pairs,
    pf: _PairForce,
    d_depth: jnp.ndarray,
    d_normal: jnp.ndarray,
    d_point: jnp.ndarray,
    friction: bool = True,
) -> jnp.ndarray:
    """Derivatives (6, ..., 3) of `_pair_force`'s force (unmasked) along the body tangents,
    given those of the depth (6, ...), normal (6, ..., 3) and application point (6, ..., 3);
    `friction` False for frictionless pairs (as `_pair_force`'s).

    Differentiates, with f_H' = 3/2 f_H/d (f_H ∝ d^(3/2)): f = f_H (1 + 3/2 c v_n),
    F = f n + f (φ(v_s) + μv) v_t, φ(v_s) = (μd + 2(μs − μd)/(1 + (v_s/v_tr)²)) / max(v_s, v_tr),
    where v = −(v_o + ω ẑ×(p − o)) is the point's velocity relative to the fixed surface."""
    _, c, us, ud, uv = pairs.material
    nd = pairs.touching.ndim
    touching = pairs.touching
    normal, v, v_t = pairs.normal, pf.v, pf.v_t
    lever = pairs.point[..., :2] - pairs.body_origin
    d_lever = d_point[..., :2] - _per_tangent(_T_ORIGIN, nd, lever.dtype)
    d_v = -_in_space(
        _per_tangent(_T_VEL, nd, lever.dtype)
        + _per_tangent(_T_OMEGA, nd, lever.dtype)[..., None] * perp(lever)
        + pairs.body_omega[..., None] * perp(d_lever)
    )
    d_safe = jnp.where(touching, pairs.depth, 1.0)
    d_f_hertz = HERTZ_EXPONENT * pf.f_hertz / d_safe * d_depth
    d_v_n = _dot(d_normal, v) + _dot(normal, d_v)
    d_f = d_f_hertz * (1 + DISSIPATION_FACTOR * c * pf.v_n) + (
        DISSIPATION_FACTOR * c * pf.f_hertz * d_v_n
    )
    if not friction:
        return d_f[..., None] * normal + pf.f[..., None] * d_normal
    d_v_t = d_v - d_v_n[..., None] * normal - pf.v_n[..., None] * d_normal
    slipping = pf.v_slip > 0
    d_slip = jnp.where(slipping, _dot(v_t, d_v_t) / jnp.where(slipping, pf.v_slip, 1.0), 0.0)
    v_tr = pairs.transition_velocity
    v_r = pf.v_slip / v_tr
    scale = jnp.maximum(pf.v_slip, v_tr)
    # d/dv_s of 2(μs − μd)/(1 + v_r²) = −2(μs − μd) · 2 v_r/(1 + v_r²)² / v_tr
    d_numerator = -4 * (us - ud) * v_r / (1 + v_r * v_r) ** 2 * d_slip / v_tr
    d_scale = jnp.where(pf.v_slip > v_tr, d_slip, 0.0)
    d_per_speed = (d_numerator - pf.per_speed * d_scale) / scale
    friction = pf.per_speed + uv
    return (
        d_f[..., None] * normal
        + pf.f[..., None] * d_normal
        + (d_f * friction + pf.f * d_per_speed)[..., None] * v_t
        + (pf.f * friction)[..., None] * d_v_t
    )


def contact_tangents(
    p: ContactParams,
    origin: jnp.ndarray,
    angle: jnp.ndarray,
    origin_vel: jnp.ndarray,
    omega: jnp.ndarray,
    obstacles: jnp.ndarray,
) -> ContactTangents:
    """The contact forces (as `contact_forces`, platform included) with their analytic first
    derivatives by each contact's own body's rigid motions (arguments as `contact_forces`).

    The same numbers as forward-mode differentiation of `contact_forces` along the six
    tangents (tested), written out for speed: for one CPU runner with the platform and two
    obstacles, `jax.linearize` with a vmap over the tangents took ~17 µs per call beyond the
    body frames, this ~6 µs (2026-12-03, session 26). Where a pair does not touch, its
    derivatives are 0."""
    centers = sphere_centers(p, origin, angle)  # (4, 3)
    body = concrete(p.sphere_body)
    sets = concrete(p.set_spheres)
    b_origin, b_vel, b_omega = origin[body], origin_vel[body], omega[body]
    # each sphere centre's tangent (6, 4, 3): δo + δθ ẑ×(c − o)
    d_center = _in_space(
        _per_tangent(_T_ORIGIN, 1, centers.dtype)
        + _per_tangent(_T_ANGLE, 1, centers.dtype)[..., None] * perp(centers[:, :2] - b_origin)
    )

    # platform: a fixed normal; depth = r − n·(c − t0); point = c − r n + (1 − s1) d n
    plat = _platform_pairs(p, centers, b_origin, b_vel, b_omega)
    plat_force = _pair_force(plat)
    applied = _platform_applied(p, centers, plat, plat_force.f)
    d_c = d_center[:, sets]  # (6, 2, 2, 3)
    d_depth = -_dot(plat.normal, d_c)
    d_point = d_c + ((1 - plat.s1) * d_depth)[..., None] * plat.normal
    d_plat = _pair_force_tangents(plat, plat_force, d_depth, jnp.zeros_like(d_c), d_point)
    plat_rows = (
        jnp.where(applied[..., None], plat_force.force, 0.0),
        plat.point,
        jnp.where(applied[..., None], d_plat, 0.0),
        jnp.where(plat.touching[..., None], d_point, 0.0),
    )

    # obstacles: n = (c − o_c)/|c − o_c|; depth = R − |c − o_c|; point = o_c + (r_o − s1 d) n
    obs = _obstacle_pairs(p, centers, b_origin, b_vel, b_omega, obstacles)
    obs_force = _pair_force(obs, friction=OBSTACLE_FRICTION)
    touching = obs.touching
    r_obstacle = jnp.asarray(obstacles)[:, 2:3]  # (K, 1)
    dist = jnp.where(touching, r_obstacle + p.sphere_radius - obs.depth, 1.0)
    n = obs.normal
    d_c = jnp.broadcast_to(d_center[:, None], (N_BODY_TANGENTS, *n.shape))
    along = _dot(n, d_c)
    d_depth = -along
    d_normal = (d_c - along[..., None] * n) / dist[..., None]
    d_point = (-obs.s1 * d_depth)[..., None] * n + (r_obstacle - obs.s1 * obs.depth)[
        ..., None
    ] * d_normal
    d_obs = _pair_force_tangents(
        obs, obs_force, d_depth, d_normal, d_point, friction=OBSTACLE_FRICTION
    )
    acts = _obstacle_applied(obs, obs_force.f)
    obs_rows = (
        jnp.where(acts[..., None], obs_force.force, 0.0),
        obs.point,
        jnp.where(acts[..., None], d_obs, 0.0),
        jnp.where(touching[..., None], d_point, 0.0),
    )

    def rows(plat_part: jnp.ndarray, obs_part: jnp.ndarray, tangents: bool) -> jnp.ndarray:
        lead = (N_BODY_TANGENTS,) if tangents else ()
        return jnp.concatenate(
            [plat_part.reshape(*lead, -1, 3), obs_part.reshape(*lead, -1, 3)], axis=-2
        )[..., :2]

    n_obs = touching.shape[0]
    return ContactTangents(
        force=rows(plat_rows[0], obs_rows[0], False),
        point=rows(plat_rows[1], obs_rows[1], False),
        body=np.concatenate([body[sets].reshape(-1), np.tile(body, n_obs)]),
        d_force=rows(plat_rows[2], obs_rows[2], True),
        d_point=rows(plat_rows[3], obs_rows[3], True),
    )


def contact_wrenches(
    p: ContactParams, contact: ContactForces, origin: jnp.ndarray
) -> tuple[jnp.ndarray, jnp.ndarray]:
    """Per-body (force (nb, 3) N, torque about the body origin (nb, 3) N·m), ground frame,
    as Simbody accumulates them (OpenSim's HuntCrossleyForce record values per body)."""
    n_bodies = origin.shape[0]
    body_origin = jnp.concatenate([origin, p.body_z[:, None]], axis=-1)[contact.body]
    torque = jnp.cross(contact.point - body_origin, contact.force)
    return add_at(contact.body, contact.force, n_bodies), add_at(contact.body, torque, n_bodies)


def foot_ground_reactions(contact: ContactForces) -> jnp.ndarray:
    """Platform reaction force on each foot (2, 3) N (foot_r, foot_l): Σ over its set."""
    plat = contact.force[:N_PLATFORM_CONTACTS].reshape(2, 2, 3)
    return jnp.sum(plat, axis=1)


__all__ = [
    "N_BODY_TANGENTS",
    "ContactForces",
    "ContactTangents",
    "ContactParams",
    "compile_contact",
    "contact_forces",
    "contact_tangents",
    "contact_wrenches",
    "foot_ground_reactions",
    "sphere_centers",
]
