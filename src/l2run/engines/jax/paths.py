"""Muscle paths (OpenSim `GeometryPath` of fixed, conditional and moving points), all at once.

Inputs are the body poses and their Jacobians from `kinematics.py` (every body of this planar
model is a rotation about ground z plus an in-plane translation; its origin's z is a constant
that `compile_paths` sums from the joint offsets) and the coordinates q (and speeds u).

OpenSim 4.6 semantics reproduced here:

* a `ConditionalPathPoint` is on the path while ``lo − 1e-5 <= q <= hi + 1e-5`` (inclusive, with
  OpenSim's 1e-5 slack); the path joins consecutive *active* points with straight 3-D segments;
* a `MovingPathPoint`'s location is its spline evaluated at the coordinate **clamped to the
  coordinate's range**, but its velocity (`getVelocity`) and its force term (`getdPointdQ`) use
  the spline's derivative at the *unclamped* value. We carry that derivative in the Jacobian, so
  beyond the knee's range (hyperextension) lengthening speed and moment arms are OpenSim's, not
  the exact derivative of the length;
* lengthening speed = Σ segments (v_i − v_j)·(r_i − r_j)/|r_i − r_j| (`Point::calcSpeedBetween`)
  = (∂L/∂q)·u with the Jacobian above (u = q̇ for every coordinate of this model);
* forces (`GeometryPath::produceForces`): tension T pulls each end of every segment whose points
  lie on *different* bodies toward the other end; a moving point adds ``dP/dq·F`` on its
  coordinate. The resulting generalized force is exactly ``−T ∂L_f/∂q`` where L_f sums only those
  segments, and OpenSim's moment arm (`computeMomentArm`, unit tension) is ``−∂L_f/∂q``.
"""

from __future__ import annotations

import functools
import operator
from typing import NamedTuple

import jax.numpy as jnp
import numpy as np

from l2run.engines.jax.bodies import BodyTreeParams
from l2run.engines.jax.indexed_writes import add_at_2d, set_at
from l2run.engines.jax.kinematics import cos_sin, rotate_by
from l2run.engines.jax.splines import (
    SplineParams,
    compile_splines,
    spline_derivatives,
    spline_values,
)
from l2run.engines.jax.static import Static, concrete
from l2run.model.names import BODIES, COORDINATES, MUSCLES

# ConditionalPathPoint::isActive slack on its range (rad or m).
CONDITIONAL_RANGE_SLACK = 1e-5
# Point kinds.
PADDING, FIXED, CONDITIONAL, MOVING = -1, 0, 1, 2
_AXES = ("x", "y", "z")


class PathParams(NamedTuple):
    """Padded path points of M muscles (at most P points each), MUSCLES order.

    Body indices follow `l2run.model.names.BODIES`; ground is index len(BODIES). Coordinate
    indices follow COORDINATES; len(COORDINATES) means "none".
    """

    body: Static  # (M, P) int
    kind: Static  # (M, P) int: PADDING, FIXED, CONDITIONAL, MOVING
    location: jnp.ndarray  # (M, P, 3) m in the body frame (moving points: filled at run time)
    condition_coord: Static  # (M, P) int
    condition_range: jnp.ndarray  # (M, P, 2) rad / m
    body_z: jnp.ndarray  # (nb + 1,) m: z of each body origin in ground (constant, planar model)
    moving_splines: SplineParams  # (S,) the x/y/z functions of all moving points
    moving_target: Static  # (S, 3) int: (muscle, point, axis) each function drives
    moving_coord: Static  # (S,) int: coordinate each function reads
    moving_range: jnp.ndarray  # (S, 2): that coordinate's range (the location clamps to it)


def _body_z(definition) -> dict[str, float]:
    """z of every body origin in ground; rejects joints that would move bodies out of plane."""
    z = {definition.ground: 0.0}
    for j in definition.joints:  # JointSet order lists parents before children here
        for frame in (j.parent_frame, j.child_frame):
            if frame.orientation[0] != 0.0 or frame.orientation[1] != 0.0:
                raise ValueError(f"joint {j.name}: frame {frame.name} is not a rotation about z")
        shift = 0.0
        for axis in j.spatial_transform:
            fn = axis.function
            if axis.name.startswith("rotation"):
                if tuple(axis.axis) != (0.0, 0.0, 1.0) and getattr(fn, "kind", "") != "Constant":
                    raise ValueError(f"joint {j.name}: {axis.name} rotates out of the plane")
                if getattr(fn, "kind", "") == "Constant" and fn.value != 0.0:
                    raise ValueError(f"joint {j.name}: {axis.name} is a constant non-zero angle")
            elif axis.axis[2] != 0.0:
                if getattr(fn, "kind", "") != "Constant" or axis.axis[:2] != (0.0, 0.0):
                    raise ValueError(f"joint {j.name}: {axis.name} moves along z")
                shift += axis.axis[2] * fn.value
        parent = j.parent_frame.body
        if parent not in z:
            raise ValueError(f"joint {j.name}: parent {parent} has no pose yet (order)")
        z[j.child_frame.body] = (
            z[parent] + j.parent_frame.translation[2] + shift - j.child_frame.translation[2]
        )
    return z


def compile_paths(definition) -> PathParams:
    """Path arrays (numpy) for the muscles of a `ModelDefinition`, in MUSCLES order."""
    by_name = {m.name: m for m in definition.muscles}
    muscles = [by_name[n] for n in MUSCLES]
    n_q, n_b = len(COORDINATES), len(BODIES)
    body_index = {b: i for i, b in enumerate(BODIES)} | {definition.ground: n_b}
    coord_index = {c: i for i, c in enumerate(COORDINATES)}
    coord_range = {c.name: c.range for c in definition.coordinates}
    n_p = max(len(m.path) for m in muscles)
    shape = (len(muscles), n_p)
    body = np.full(shape, n_b, dtype=np.int32)
    kind = np.full(shape, PADDING, dtype=np.int32)
    location = np.zeros((*shape, 3))
    cond_coord = np.full(shape, n_q, dtype=np.int32)
    cond_range = np.zeros((*shape, 2))
    functions, target, m_coord, m_range = [], [], [], []
    for i, m in enumerate(muscles):
        if len(m.path) < 2:
            raise ValueError(f"{m.name}: a path needs at least two points")
        for end in (m.path[0], m.path[-1]):
            if end.kind == "ConditionalPathPoint":
                raise ValueError(f"{m.name}: conditional end points are not supported")
        for k, point in enumerate(m.path):
            body[i, k] = body_index[point.body]
            if point.kind == "PathPoint":
                kind[i, k], location[i, k] = FIXED, point.location
            elif point.kind == "ConditionalPathPoint":
                if point.coordinate not in coord_index:
                    raise ValueError(
                        f"{m.name}/{point.name}: coordinate {point.coordinate} not in q"
                    )
                kind[i, k], location[i, k] = CONDITIONAL, point.location
                cond_coord[i, k] = coord_index[point.coordinate]
                cond_range[i, k] = point.range
            elif point.kind == "MovingPathPoint":
                kind[i, k] = MOVING
                for a, axis in enumerate(_AXES):
                    coord = getattr(point, f"{axis}_coordinate")
                    functions.append(getattr(point, f"{axis}_location"))
                    target.append((i, k, a))
                    if coord:  # OpenSim: no coordinate -> f(0)
                        if coord not in coord_index:
                            raise ValueError(f"{m.name}/{point.name}: coordinate {coord} not in q")
                        m_coord.append(coord_index[coord])
                        m_range.append(coord_range[coord])
                    else:
                        m_coord.append(n_q)
                        m_range.append((0.0, 0.0))
            else:
                raise ValueError(f"{m.name}/{point.name}: unsupported path point {point.kind}")
    z = _body_z(definition)
    body_z = np.array([z[b] for b in BODIES] + [0.0])
    if not functions:  # a placeholder keeps the pytree valid for a model without moving points
        functions, target = [((0.0, 1.0), (0.0, 0.0))], [(0, 0, 0)]
        m_coord, m_range = [n_q], [(0.0, 0.0)]
    return PathParams(
        body=Static(body),
        kind=Static(kind),
        location=location,
        condition_coord=Static(cond_coord),
        condition_range=cond_range,
        body_z=body_z,
        moving_splines=compile_splines(functions),
        moving_target=Static(np.array(target, dtype=np.int32)),
        moving_coord=Static(np.array(m_coord, dtype=np.int32)),
        moving_range=np.array(m_range, dtype=float),
    )


# --- evaluation --------------------------------------------------------------------------------


def _point_rotations(p: PathParams, angle: jnp.ndarray) -> tuple[jnp.ndarray, jnp.ndarray]:
    """cos and sin (M, P) of each path point's body angle; taken per body and then gathered,
    so each body's angle passes through cos and sin once, not once per point."""
    cos, sin = cos_sin(jnp.concatenate([angle, jnp.zeros((1,), angle.dtype)]))
    body = concrete(p.body)
    return cos[body], sin[body]


def _local_points(p: PathParams, q: jnp.ndarray):
    """Local point locations (M, P, 3) and, per moving-point function, d(location)/dq of its
    coordinate (S,) (value at the clamped coordinate, derivative at the raw one, as OpenSim;
    0 for a function without a coordinate)."""
    n_q = q.shape[0]
    q_ext = jnp.concatenate([q, jnp.zeros((1,), q.dtype)])
    moving_coord = concrete(p.moving_coord)
    raw = q_ext[moving_coord]
    clamped = jnp.clip(raw, p.moving_range[:, 0], p.moving_range[:, 1])
    values = spline_values(p.moving_splines, clamped)
    slopes = spline_derivatives(p.moving_splines, raw)
    mi, pi, ai = concrete(p.moving_target).T
    is_moving = concrete(p.kind)[mi, pi] == MOVING  # False only for a model without any
    location = jnp.asarray(p.location, values.dtype)
    n_points = location.shape[1]
    target = (mi * n_points + pi) * location.shape[2] + ai
    local = set_at(location, target, jnp.where(is_moving, values, location[mi, pi, ai]))
    return local, jnp.where(is_moving & (moving_coord < n_q), slopes, 0.0)


def _active(p: PathParams, q: jnp.ndarray) -> jnp.ndarray:
    q_ext = jnp.concatenate([q, jnp.zeros((1,), q.dtype)])
    qc = q_ext[concrete(p.condition_coord)]
    in_range = (qc >= p.condition_range[..., 0] - CONDITIONAL_RANGE_SLACK) & (
        qc <= p.condition_range[..., 1] + CONDITIONAL_RANGE_SLACK
    )
    kind = concrete(p.kind)
    always = jnp.asarray((kind == FIXED) | (kind == MOVING))
    return always | (jnp.asarray(kind == CONDITIONAL) & in_range)


def path_points(
    p: PathParams, origin: jnp.ndarray, angle: jnp.ndarray, q: jnp.ndarray
) -> tuple[jnp.ndarray, jnp.ndarray]:
    """Ground positions (M, P, 3) m of all path points and which are on the path (M, P) bool.

    `origin` (nb, 2) m and `angle` (nb,) rad are the body poses in ground (BODIES order)."""
    local, _ = _local_points(p, q)
    origin_ext = jnp.concatenate([origin, jnp.zeros((1, 2), origin.dtype)])
    body = concrete(p.body)
    xy = origin_ext[body] + rotate_by(*_point_rotations(p, angle), local[..., :2])
    z = p.body_z[body] + local[..., 2]
    return jnp.concatenate([xy, z[..., None]], axis=-1), _active(p, q)


class SegmentPlan(NamedTuple):
    """Every segment a path can have, known while tracing (numpy): per muscle K slots, each
    joining point `start` to point `end` of the muscle, used when both are on the path and the
    point between them, if any (`skipped`, a conditional point), is off it. Only conditional
    points can be off, and no two are consecutive in this model's paths, so the slots are the
    pairs of neighbouring points and the pairs with one conditional point between."""

    start: np.ndarray  # (M, K) int: point index within the muscle
    end: np.ndarray  # (M, K) int
    skipped: np.ndarray  # (M, K) int: the point between start and end (P: none)
    real: np.ndarray  # (M, K) bool: False for padding slots
    ends_at: np.ndarray  # (M, P, 2) int: slots ending at each point (K: none)
    starts_at: np.ndarray  # (M, P, 2) int: slots starting at each point (K: none)


def segment_plan(kind: np.ndarray) -> SegmentPlan:
    """The candidate segments of paths whose point kinds are `kind` (M, P)."""
    slots = []
    for row in kind:
        points = np.flatnonzero(row != PADDING)
        pairs = []
        for a, j in enumerate(points):
            for k in points[a + 1 :]:
                pairs.append((j, k))
                if row[k] != CONDITIONAL:  # a point that is always on ends every longer skip
                    break
        slots.append(pairs)
    n_m, n_p = kind.shape
    n_k = max(len(pairs) for pairs in slots)
    start = np.zeros((n_m, n_k), dtype=np.int32)
    end = np.zeros((n_m, n_k), dtype=np.int32)
    skipped = np.full((n_m, n_k), n_p, dtype=np.int32)
    real = np.zeros((n_m, n_k), dtype=bool)
    ends_at = np.full((n_m, n_p, 2), n_k, dtype=np.int32)
    starts_at = np.full((n_m, n_p, 2), n_k, dtype=np.int32)
    for m, pairs in enumerate(slots):
        n_end, n_start = np.zeros(n_p, int), np.zeros(n_p, int)
        for slot, (j, k) in enumerate(pairs):
            start[m, slot], end[m, slot], real[m, slot] = j, k, True
            if k - j > 2:
                raise ValueError("paths with consecutive conditional points are not supported")
            if k - j == 2:
                skipped[m, slot] = j + 1
            ends_at[m, k, n_end[k]] = slot
            starts_at[m, j, n_start[j]] = slot
            n_end[k] += 1
            n_start[j] += 1
    return SegmentPlan(start, end, skipped, real, ends_at, starts_at)


def _per_muscle(a: jnp.ndarray, index: np.ndarray) -> jnp.ndarray:
    """a[m, index[m, ...]] for every muscle m (a: (M, X, ...), index: (M, ...) static)."""
    rows = np.arange(a.shape[0]).reshape((-1,) + (1,) * (index.ndim - 1))
    return a[rows, index]


def _spread(compact: jnp.ndarray, columns: list[np.ndarray], n_q: int) -> jnp.ndarray:
    """(M, n_q) with row m's first len(columns[m]) entries of `compact` (M, C) at the
    coordinates `columns[m]` and zeros elsewhere: one gather at constant positions (fixed
    while tracing)."""
    width = compact.shape[1]
    index = np.full((compact.shape[0], n_q), width, dtype=np.int32)  # width: the zero column
    for m, cols in enumerate(columns):
        index[m, cols] = np.arange(len(cols))
    padded = jnp.concatenate([compact, jnp.zeros_like(compact[:, :1])], axis=1)
    return _per_muscle(padded, index)


def _segments(pos: jnp.ndarray, active: jnp.ndarray, plan: SegmentPlan):
    """The plan's segments: (used (M, K), length (M, K), unit vector (M, K, 3)); a slot is used
    when its points are on the path with none between, and its length is not zero."""
    delta = _per_muscle(pos, plan.end) - _per_muscle(pos, plan.start)
    dist_sq = jnp.sum(delta * delta, axis=-1)
    off = jnp.zeros_like(active[:, :1])  # the "none" point: never on the path
    between_on = _per_muscle(jnp.concatenate([active, off], axis=1), plan.skipped)
    used = (
        jnp.asarray(plan.real)
        & _per_muscle(active, plan.start)
        & _per_muscle(active, plan.end)
        & ~between_on
        & (dist_sq > 0.0)
    )
    dist = jnp.sqrt(jnp.where(used, dist_sq, 1.0))
    return used, jnp.where(used, dist, 0.0), delta / dist[..., None]


def path_lengths(
    p: PathParams, origin: jnp.ndarray, angle: jnp.ndarray, q: jnp.ndarray
) -> jnp.ndarray:
    """Path lengths (M,) m from body poses (nb, 2), (nb,) and q; differentiable (inside the
    coordinate ranges its time derivative is OpenSim's lengthening speed)."""
    pos, active = path_points(p, origin, angle, q)
    _, dist, _ = _segments(pos, active, segment_plan(concrete(p.kind)))
    return jnp.sum(dist, axis=-1)


def muscle_coordinates(tree: BodyTreeParams, p: PathParams) -> list[np.ndarray]:
    """Per muscle, the coordinates (sorted indices) its path's length can depend on: those of the
    joints between its bodies (on the way from each body up to, not including, the joint of
    their deepest common ancestor) and those its moving points read. The joints above that
    common ancestor move every point of the path rigidly together, so the length's derivative
    along their coordinates is exactly zero (OpenSim sums it from point forces that cancel to
    ~1e-16)."""
    ancestors = concrete(tree.ancestors) > 0  # [b, j]: joint j lies on the path ground -> b
    dof_coord = concrete(tree.dof_coord)
    n_b, n_q = ancestors.shape[0], len(COORDINATES)
    moving: dict[int, set[int]] = {}
    kind = concrete(p.kind)
    for (m, k, _), c in zip(concrete(p.moving_target), concrete(p.moving_coord), strict=True):
        if c < n_q and kind[m, k] == MOVING:
            moving.setdefault(int(m), set()).add(int(c))
    sets = []
    for m, row in enumerate(concrete(p.body)):
        bodies = sorted({int(b) for b in row if b < n_b})
        joints = ancestors[bodies].any(axis=0) & ~ancestors[bodies].all(axis=0)
        coords = {int(c) for c in dof_coord[joints].ravel() if c < n_q} | moving.get(m, set())
        sets.append(np.array(sorted(coords), dtype=np.int32))
    return sets


class PathGeometry(NamedTuple):
    """Path lengths and their first-order kinematics (M muscles, n_q coordinates)."""

    length: jnp.ndarray  # (M,) m
    speed: jnp.ndarray  # (M,) m/s, lengthening speed (OpenSim's getLengtheningSpeed)
    # (M, n_q) ∂L/∂q over all segments (speed = length_jac @ u); a same-body segment adds
    # only its moving points' terms (its rigid-motion terms cancel)
    length_jac: jnp.ndarray
    force_jac: jnp.ndarray  # (M, n_q) ∂L_f/∂q over segments between different bodies


def path_geometry(
    p: PathParams,
    origin: jnp.ndarray,
    angle: jnp.ndarray,
    origin_jac: jnp.ndarray,
    angle_jac: jnp.ndarray,
    q: jnp.ndarray,
    u: jnp.ndarray,
    columns: list[np.ndarray] | None = None,
) -> PathGeometry:
    """Lengths, lengthening speeds and Jacobians of all muscle paths.

    origin (nb, 2) m, angle (nb,) rad: body poses in ground; origin_jac (nb, 2, n_q) and
    angle_jac (nb, n_q): their Jacobians with respect to the speeds u (= q̇), as
    `kinematics.FrameJacobians` holds them; q, u (n_q,). `columns` (per muscle), from
    `muscle_coordinates`: the Jacobians are computed on those coordinates only and are zero
    elsewhere (None: on every coordinate, each to its round-off).
    """
    local, slopes = _local_points(p, q)
    n_q = q.shape[0]
    origin_ext = jnp.concatenate([origin, jnp.zeros((1, 2), origin.dtype)])
    point_cos, point_sin = _point_rotations(p, angle)  # (M, P)
    arm = rotate_by(point_cos, point_sin, local[..., :2])  # (M, P, 2) offset from the body origin
    body = concrete(p.body)
    xy = origin_ext[body] + arm
    pos = jnp.concatenate([xy, (p.body_z[body] + local[..., 2])[..., None]], axis=-1)
    active = _active(p, q)
    plan = segment_plan(concrete(p.kind))
    used, dist, unit = _segments(pos, active, plan)
    length = jnp.sum(dist, axis=-1)

    # ∂L/∂q = Σ_points w·∂P/∂q with w = Σ unit vectors of the segments ending there minus those
    # starting there: the point forces of a unit tension (GeometryPath::produceForces). Summed
    # per body they act through the body Jacobians; moving points add their own motion.
    # Each body's Jacobian rows (nb, 3, n_q): origin x, origin y, angle. A muscle's points lie
    # on 2-3 bodies, so its point forces and torques are summed per body first and each of its
    # bodies' rows is used once (static slices: the bodies are known while tracing), rather
    # than gathering every point's rows (90 of them) and summing over points.
    body_jac = jnp.concatenate([origin_jac, angle_jac[:, None, :]], axis=1)
    n_bodies = body_jac.shape[0]
    muscle_bodies = [
        [(b, np.flatnonzero(row == b)) for b in dict.fromkeys(row.tolist()) if b < n_bodies]
        for row in body
    ]
    mi, pi, ai = concrete(p.moving_target).T
    cos, sin = point_cos[mi, pi], point_sin[mi, pi]
    zero, one = jnp.zeros_like(cos), jnp.ones_like(cos)
    axis_dirs = jnp.stack(  # ground direction of each moving function's local axis (S, 3, 3)
        [
            jnp.stack([cos, sin, zero], -1),
            jnp.stack([-sin, cos, zero], -1),
            jnp.stack([zero, zero, one], -1),
        ],
        axis=1,
    )
    axis_dir = jnp.take_along_axis(axis_dirs, ai[:, None, None], axis=1)[:, 0]  # (S, 3)
    coord = np.minimum(concrete(p.moving_coord), n_q - 1)
    if columns is None:
        columns = [np.arange(n_q)] * body.shape[0]
    width = max(len(c) for c in columns)
    # where each moving function's coordinate sits among its muscle's columns (a function
    # without a coordinate adds a zero slope anywhere: the first)
    at_column = np.array(
        [np.append(np.flatnonzero(columns[m] == c), 0)[0] for m, c in zip(mi, coord, strict=True)]
    )

    def point_weights(weight: jnp.ndarray) -> jnp.ndarray:
        """(M, P, 3): each point's sum of the unit vectors of the weighted segments ending
        there minus those starting there."""
        uw = unit * weight[..., None]  # (M, K, 3), zero where a slot is not used
        uw = jnp.concatenate([uw, jnp.zeros_like(uw[:, :1])], axis=1)  # slot K: none
        ending = jnp.sum(_per_muscle(uw, plan.ends_at), axis=-2)  # one used slot at most
        return ending - jnp.sum(_per_muscle(uw, plan.starts_at), axis=-2)

    def rigid_part(w: jnp.ndarray) -> jnp.ndarray:
        """(M, width): the bodies' rigid motions' share of the Jacobian, zero-padded."""
        torque = arm[..., 0] * w[..., 1] - arm[..., 1] * w[..., 0]
        wrench = jnp.concatenate([w[..., :2], torque[..., None]], axis=-1)  # (M, P, 3)
        rows = []
        for m, bodies in enumerate(muscle_bodies):
            cols = columns[m]  # each row computed on its muscle's coordinates only
            terms = [
                functools.reduce(operator.add, [wrench[m, k] for k in points])
                @ body_jac[b][:, cols]
                for b, points in bodies
            ]
            row = functools.reduce(operator.add, terms, jnp.zeros(len(cols), wrench.dtype))
            rows.append(jnp.concatenate([row, jnp.zeros(width - len(cols), row.dtype)]))
        return jnp.stack(rows)

    def jacobian(rigid: jnp.ndarray, w: jnp.ndarray) -> jnp.ndarray:
        """(M, n_q): the rigid part plus the moving points' own motion."""
        moving = slopes * jnp.sum(w[mi, pi] * axis_dir, axis=-1)
        return _spread(rigid + add_at_2d(mi, at_column, moving, rigid.shape), columns, n_q)

    crosses = _per_muscle(body, plan.start) != _per_muscle(body, plan.end)  # static
    w_all = point_weights(jnp.where(used, 1.0, 0.0))
    w_force = point_weights(jnp.where(used & jnp.asarray(crosses), 1.0, 0.0))
    # A segment between two points of one body keeps its length under that body's rigid
    # motions (its two terms cancel, to round-off), so the lengths' rigid part is the
    # forces': only the moving points' own motion differs.
    rigid = rigid_part(w_force)
    length_jac, force_jac = jacobian(rigid, w_all), jacobian(rigid, w_force)
    return PathGeometry(
        length=length, speed=length_jac @ u, length_jac=length_jac, force_jac=force_jac
    )


def moment_arms(geometry: PathGeometry) -> jnp.ndarray:
    """OpenSim's moment arms (M, n_q): generalized force per newton of tension (m or 1)."""
    return -geometry.force_jac


def path_generalized_forces(geometry: PathGeometry, tension: jnp.ndarray) -> jnp.ndarray:
    """Generalized forces (n_q,) of tensions (M,) N pulling the paths: −Σ T ∂L_f/∂q."""
    return -(tension @ geometry.force_jac)
