"""Build an `opensim.Model` from our model definition, through the OpenSim 4.6 API.

Components get the reference file's names and are added in its order (bodies, joints, forces,
contact geometry), so state variables, coordinate sets and force sets line up one-to-one with
`gait9dof18musc.osim` loaded in OpenSim.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import opensim as osim

from l2run.model.definition import (
    THELEN_PROPERTIES,
    ConditionalPathPoint,
    Constant,
    ContactHalfSpace,
    ContactSphere,
    Coordinate,
    Function,
    Joint,
    LinearFunction,
    ModelDefinition,
    MovingPathPoint,
    Muscle,
    PathPoint,
    SimmSpline,
    load_definition,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

# PlanarJoint / PinJoint / WeldJoint share this constructor signature:
# (name, parent, location_in_parent, orientation_in_parent, child, location, orientation).
_SPATIAL_AXES = 6
_SIMPLE_JOINTS = {
    "PlanarJoint": osim.PlanarJoint,
    "PinJoint": osim.PinJoint,
    "WeldJoint": osim.WeldJoint,
}


def build_model(definition: ModelDefinition | None = None) -> osim.Model:
    """A new, not yet initialised `opensim.Model` (call `initSystem()` to simulate it)."""
    d = definition if definition is not None else load_definition()
    model = osim.Model()
    model.setName(d.name)
    model.set_credits(d.credits)
    model.set_publications(d.publications)
    model.setGravity(_vec3(d.gravity))
    if model.getGround().getName() != d.ground:
        raise ValueError(f"ground must be named {model.getGround().getName()!r}, got {d.ground!r}")

    frames: dict[str, osim.PhysicalFrame] = {d.ground: model.getGround()}
    for b in d.bodies:
        body = osim.Body(b.name, b.mass, _vec3(b.mass_center), osim.Inertia(*b.inertia))
        model.addBody(body)
        frames[b.name] = body

    for j in d.joints:
        joint = _joint(j, frames)
        model.addJoint(joint)
        for i, c in enumerate(j.coordinates):
            _set_coordinate(joint.upd_coordinates(i), c)

    # Component paths, as sockets name them in a model file.
    body_paths = {d.ground: f"/{d.ground}"} | {b.name: f"/bodyset/{b.name}" for b in d.bodies}
    coordinate_paths = {
        c.name: f"/jointset/{j.name}/{c.name}" for j in d.joints for c in j.coordinates
    }

    muscles = {m.name: m for m in d.muscles}
    contacts = {f.name: f for f in d.contact_forces}
    limits = {f.name: f for f in d.coordinate_limit_forces}
    for name in d.force_order:
        if name in muscles:
            model.addForce(_muscle(muscles[name], body_paths, coordinate_paths))
        elif name in contacts:
            model.addForce(_hunt_crossley(contacts[name]))
        else:
            model.addForce(_coordinate_limit(limits[name]))

    for g in d.contact_geometry:
        model.addContactGeometry(_contact_geometry(g, frames))
    return model


# --- pieces ------------------------------------------------------------------------------------


def _vec3(v: Sequence[float]) -> osim.Vec3:
    return osim.Vec3(float(v[0]), float(v[1]), float(v[2]))


def _function(f: Function) -> osim.Function:
    if isinstance(f, SimmSpline):
        spline = osim.SimmSpline()
        for x, y in zip(f.x, f.y, strict=True):
            spline.addPoint(x, y)
        return spline
    if isinstance(f, Constant):
        return osim.Constant(f.value)
    if isinstance(f, LinearFunction):
        return osim.LinearFunction(f.coefficients[0], f.coefficients[1])
    raise ValueError(f"unsupported function {f!r}")


def _joint(j: Joint, frames: dict[str, osim.PhysicalFrame]) -> osim.Joint:
    parent, child = frames[j.parent_frame.body], frames[j.child_frame.body]
    args = (
        j.name,
        parent,
        _vec3(j.parent_frame.translation),
        _vec3(j.parent_frame.orientation),
        child,
        _vec3(j.child_frame.translation),
        _vec3(j.child_frame.orientation),
    )
    if j.type == "CustomJoint":
        transform = osim.SpatialTransform()
        if len(j.spatial_transform) != _SPATIAL_AXES:
            raise ValueError(f"joint {j.name}: a SpatialTransform has {_SPATIAL_AXES} axes")
        for i, axis in enumerate(j.spatial_transform):
            ta = transform.updTransformAxis(i)  # 0-2 rotations, 3-5 translations
            ta.setName(axis.name)
            names = osim.ArrayStr()
            for c in axis.coordinates:
                names.append(c)
            ta.setCoordinateNames(names)
            ta.setAxis(_vec3(axis.axis))
            ta.set_function(_function(axis.function))  # property copy: no ownership transfer
        joint = osim.CustomJoint(*args, transform)
        joint.finalizeFromProperties()  # creates the Coordinates named by the transform axes
    elif j.type in _SIMPLE_JOINTS:
        joint = _SIMPLE_JOINTS[j.type](*args)
    else:
        raise ValueError(f"joint {j.name}: unsupported type {j.type}")

    # The API names the offset frames "<body>_offset", as the 30000-format upgrade does; our
    # definition records the names, so a mismatch means the definition came from elsewhere.
    built = (joint.get_frames(0).getName(), joint.get_frames(1).getName())
    wanted = (j.parent_frame.name, j.child_frame.name)
    if built != wanted:
        raise ValueError(f"joint {j.name}: offset frames {built}, definition wants {wanted}")
    if joint.numCoordinates() != len(j.coordinates):
        raise ValueError(
            f"joint {j.name}: {joint.numCoordinates()} coordinates, "
            f"definition has {len(j.coordinates)}"
        )
    return joint


def _set_coordinate(coord: osim.Coordinate, c: Coordinate) -> None:
    coord.setName(c.name)
    coord.setDefaultValue(c.default_value)
    coord.setDefaultSpeedValue(c.default_speed_value)
    coord.setRangeMin(c.range[0])
    coord.setRangeMax(c.range[1])
    coord.setDefaultClamped(c.clamped)
    coord.setDefaultLocked(c.locked)
    coord.set_prescribed(c.prescribed)
    coord.set_is_free_to_satisfy_constraints(c.is_free_to_satisfy_constraints)


def _muscle(
    m: Muscle, bodies: dict[str, str], coordinates: dict[str, str]
) -> osim.Thelen2003Muscle:
    """A Thelen2003Muscle; `bodies` / `coordinates` map names to component paths."""
    if m.type != "Thelen2003Muscle":
        raise ValueError(f"muscle {m.name}: unsupported type {m.type}")
    muscle = osim.Thelen2003Muscle()
    muscle.setName(m.name)
    for field_name, prop in THELEN_PROPERTIES.items():
        getattr(muscle, f"set_{prop}")(getattr(m, field_name))
    points = muscle.updGeometryPath().updPathPointSet()
    for p in m.path:
        # Sockets are set by path, not by object: the set stores a copy of each point, and a
        # copy keeps connectee paths but drops object connections.
        sockets = {"parent_frame": bodies[p.body]}
        if isinstance(p, PathPoint):
            point = osim.PathPoint()
            point.set_location(_vec3(p.location))
        elif isinstance(p, ConditionalPathPoint):
            point = osim.ConditionalPathPoint()
            point.set_location(_vec3(p.location))
            point.set_range(0, p.range[0])
            point.set_range(1, p.range[1])
            sockets["coordinate"] = coordinates[p.coordinate]
        elif isinstance(p, MovingPathPoint):
            point = osim.MovingPathPoint()
            point.set_x_location(_function(p.x_location))
            point.set_y_location(_function(p.y_location))
            point.set_z_location(_function(p.z_location))
            sockets["x_coordinate"] = coordinates[p.x_coordinate]
            sockets["y_coordinate"] = coordinates[p.y_coordinate]
            sockets["z_coordinate"] = coordinates[p.z_coordinate]
        else:
            raise ValueError(f"muscle {m.name}: unsupported path point {p!r}")
        point.setName(p.name)
        for socket, path in sockets.items():
            point.updSocket(socket).setConnecteePath(path)
        points.cloneAndAppend(point)
    return muscle


def _hunt_crossley(f) -> osim.HuntCrossleyForce:
    force = osim.HuntCrossleyForce()
    force.setName(f.name)
    force.set_appliesForce(f.applies_force)
    for g in f.geometry:
        force.addGeometry(g)
    force.setStiffness(f.stiffness)
    force.setDissipation(f.dissipation)
    force.setStaticFriction(f.static_friction)
    force.setDynamicFriction(f.dynamic_friction)
    force.setViscousFriction(f.viscous_friction)
    force.setTransitionVelocity(f.transition_velocity)
    return force


def _coordinate_limit(f) -> osim.CoordinateLimitForce:
    force = osim.CoordinateLimitForce()
    force.setName(f.name)
    force.set_appliesForce(f.applies_force)
    force.set_coordinate(f.coordinate)
    force.set_upper_stiffness(f.upper_stiffness)
    force.set_upper_limit(f.upper_limit)
    force.set_lower_stiffness(f.lower_stiffness)
    force.set_lower_limit(f.lower_limit)
    force.set_damping(f.damping)
    force.set_transition(f.transition)
    force.set_compute_dissipation_energy(f.compute_dissipation_energy)
    return force


def _contact_geometry(
    g: ContactHalfSpace | ContactSphere, frames: dict[str, osim.PhysicalFrame]
) -> osim.ContactGeometry:
    frame = frames[g.body]
    if isinstance(g, ContactSphere):
        geometry = osim.ContactSphere(g.radius, _vec3(g.location), frame, g.name)
        geometry.set_orientation(_vec3(g.orientation))
        return geometry
    return osim.ContactHalfSpace(_vec3(g.location), _vec3(g.orientation), frame, g.name)
