"""Extract the 2017 runner model from the reference .osim into our JSON schema.

Usage: python scripts/extract_model.py [REFERENCE.osim] [-o OUT.json]

The reference file is the 2017 OpenSim 3 format (version 30000). We read it through the
OpenSim 4.6 API after `initSystem()`, so the JSON records OpenSim 4.6's interpretation of it:
joints become PhysicalOffsetFrames, and every Thelen2003Muscle property the XML leaves out
(Af, Flen, KshapeActive, default_fiber_length, ...) is written with the value 4.6 uses.
Only the HuntCrossleyForce geometry lists are read from the XML (the Python bindings do not
expose `ContactParametersSet`).
"""

from __future__ import annotations

import argparse
import hashlib
import re
import sys
from pathlib import Path

import opensim as osim

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from l2run.model.definition import (  # noqa: E402
    DEFINITION_FILE,
    REFERENCE_MODEL_PATH,
    SCHEMA_VERSION,
    THELEN_PROPERTIES,
    Body,
    ConditionalPathPoint,
    Constant,
    ContactHalfSpace,
    ContactSphere,
    Coordinate,
    CoordinateLimitForce,
    HuntCrossleyForce,
    Joint,
    LinearFunction,
    ModelDefinition,
    MovingPathPoint,
    Muscle,
    OffsetFrame,
    PathPoint,
    SimmSpline,
    TransformAxis,
    dumps_definition,
)

UNITS = {
    "length": "m",
    "mass": "kg",
    "inertia": "kg*m^2 about the body's mass center, body axes: (xx, yy, zz, xy, xz, yz)",
    "angle": "rad (Euler angles: body-fixed X-Y-Z), except CoordinateLimitForce",
    "time": "s",
    "force": "N",
    "gravity": "m/s^2, ground frame",
    "coordinate_limit_forces": "limits and transition in deg, stiffness N*m/deg, "
    "damping N*m/(deg/s) (OpenSim's convention for rotational coordinates)",
    "hunt_crossley": "stiffness N/m^2, dissipation s/m, viscous_friction N*s/m, "
    "transition_velocity m/s",
    "muscles": "max_isometric_force N, lengths m, pennation rad, "
    "max_contraction_velocity optimal fiber lengths/s, time constants s",
}

MOTION_TYPES = {1: "rotational", 2: "translational", 3: "coupled"}


def vec(v, n: int = 3) -> tuple[float, ...]:
    return tuple(float(v.get(i)) for i in range(n))


def function(f) -> SimmSpline | Constant | LinearFunction:
    kind = f.getConcreteClassName()
    if kind == "SimmSpline":
        s = osim.SimmSpline.safeDownCast(f)
        n = s.getSize()
        return SimmSpline(
            x=tuple(float(s.getX(i)) for i in range(n)),
            y=tuple(float(s.getY(i)) for i in range(n)),
        )
    if kind == "Constant":
        return Constant(value=float(osim.Constant.safeDownCast(f).getValue()))
    if kind == "LinearFunction":
        lf = osim.LinearFunction.safeDownCast(f)
        return LinearFunction(coefficients=(float(lf.getSlope()), float(lf.getIntercept())))
    raise ValueError(f"unsupported OpenSim function {kind}")


def body(b) -> Body:
    return Body(
        name=b.getName(),
        mass=float(b.getMass()),
        mass_center=vec(b.getMassCenter()),
        inertia=vec(b.get_inertia(), 6),
    )


def offset_frame(frame) -> OffsetFrame:
    pof = osim.PhysicalOffsetFrame.safeDownCast(frame)
    if pof is None:
        raise ValueError(f"joint frame {frame.getName()} is not a PhysicalOffsetFrame")
    return OffsetFrame(
        name=pof.getName(),
        body=pof.getParentFrame().getName(),
        translation=vec(pof.get_translation()),
        orientation=vec(pof.get_orientation()),
    )


def coordinate(c) -> Coordinate:
    return Coordinate(
        name=c.getName(),
        motion_type=MOTION_TYPES[int(c.getMotionType())],
        default_value=float(c.getDefaultValue()),
        default_speed_value=float(c.get_default_speed_value()),
        range=(float(c.getRangeMin()), float(c.getRangeMax())),
        clamped=bool(c.get_clamped()),
        locked=bool(c.get_locked()),
        prescribed=bool(c.get_prescribed()),
        is_free_to_satisfy_constraints=bool(c.get_is_free_to_satisfy_constraints()),
    )


def joint(j) -> Joint:
    kind = j.getConcreteClassName()
    axes: tuple[TransformAxis, ...] = ()
    if kind == "CustomJoint":
        st = osim.CustomJoint.safeDownCast(j).getSpatialTransform()
        axes_list = []
        for i in range(6):
            ta = st.getTransformAxis(i)
            names = ta.getCoordinateNamesInArray()
            axes_list.append(
                TransformAxis(
                    name=ta.getName(),
                    axis=vec(ta.get_axis()),
                    coordinates=tuple(names.get(k) for k in range(names.size())),
                    function=function(ta.get_function()),
                )
            )
        axes = tuple(axes_list)
    elif kind not in ("PlanarJoint", "PinJoint", "WeldJoint"):
        raise ValueError(f"unsupported joint type {kind}")
    return Joint(
        name=j.getName(),
        type=kind,
        parent_frame=offset_frame(j.getParentFrame()),
        child_frame=offset_frame(j.getChildFrame()),
        coordinates=tuple(coordinate(j.get_coordinates(i)) for i in range(j.numCoordinates())),
        spatial_transform=axes,
    )


def path_point(p) -> PathPoint | ConditionalPathPoint | MovingPathPoint:
    kind = p.getConcreteClassName()
    body_name = p.getParentFrame().getName()
    if kind == "PathPoint":
        pp = osim.PathPoint.safeDownCast(p)
        return PathPoint(name=p.getName(), body=body_name, location=vec(pp.get_location()))
    if kind == "ConditionalPathPoint":
        cp = osim.ConditionalPathPoint.safeDownCast(p)
        return ConditionalPathPoint(
            name=p.getName(),
            body=body_name,
            location=vec(cp.get_location()),
            coordinate=cp.getCoordinate().getName(),
            range=(float(cp.get_range(0)), float(cp.get_range(1))),
        )
    if kind == "MovingPathPoint":
        mp = osim.MovingPathPoint.safeDownCast(p)
        return MovingPathPoint(
            name=p.getName(),
            body=body_name,
            x_coordinate=mp.getXCoordinate().getName(),
            x_location=function(mp.get_x_location()),
            y_coordinate=mp.getYCoordinate().getName(),
            y_location=function(mp.get_y_location()),
            z_coordinate=mp.getZCoordinate().getName(),
            z_location=function(mp.get_z_location()),
        )
    raise ValueError(f"unsupported path point type {kind}")


def muscle(f) -> Muscle:
    m = osim.Thelen2003Muscle.safeDownCast(f)
    pps = m.getGeometryPath().getPathPointSet()
    if m.getGeometryPath().getWrapSet().getSize():
        raise ValueError(f"muscle {m.getName()}: wrap objects are not supported")
    props = {}
    for field_name, prop in THELEN_PROPERTIES.items():
        value = getattr(m, f"get_{prop}")()
        props[field_name] = value if isinstance(value, bool) else float(value)
    return Muscle(
        name=m.getName(),
        type="Thelen2003Muscle",
        path=tuple(path_point(pps.get(i)) for i in range(pps.getSize())),
        **props,
    )


def contact_geometry(g) -> ContactHalfSpace | ContactSphere:
    kind = g.getConcreteClassName()
    common = dict(
        name=g.getName(),
        body=g.getFrame().getName(),
        location=vec(g.get_location()),
        orientation=vec(g.get_orientation()),
    )
    if kind == "ContactHalfSpace":
        return ContactHalfSpace(**common)
    if kind == "ContactSphere":
        return ContactSphere(**common, radius=float(osim.ContactSphere.safeDownCast(g).getRadius()))
    raise ValueError(f"unsupported contact geometry {kind}")


def hunt_crossley_geometry(xml_path: Path) -> dict[str, tuple[str, ...]]:
    """Force name -> geometry names of its (single) ContactParameters, read from the XML.

    A regular expression, not an XML parser: the 2017 file's `HuntCrossleyForce::...` tags
    are not well-formed XML names."""
    text = xml_path.read_text()
    out: dict[str, tuple[str, ...]] = {}
    for m in re.finditer(
        r'<HuntCrossleyForce name="([^"]+)">(.*?)</HuntCrossleyForce>', text, flags=re.S
    ):
        lists = re.findall(r"<geometry>([^<]*)</geometry>", m.group(2))
        if len(lists) != 1:
            raise ValueError(f"{m.group(1)}: expected one ContactParameters, found {len(lists)}")
        out[m.group(1)] = tuple(lists[0].split())
    return out


def hunt_crossley(f, geometry: dict[str, tuple[str, ...]]) -> HuntCrossleyForce:
    hc = osim.HuntCrossleyForce.safeDownCast(f)
    return HuntCrossleyForce(
        name=hc.getName(),
        applies_force=bool(hc.get_appliesForce()),
        geometry=geometry[hc.getName()],
        stiffness=float(hc.getStiffness()),
        dissipation=float(hc.getDissipation()),
        static_friction=float(hc.getStaticFriction()),
        dynamic_friction=float(hc.getDynamicFriction()),
        viscous_friction=float(hc.getViscousFriction()),
        transition_velocity=float(hc.getTransitionVelocity()),
    )


def coordinate_limit(f) -> CoordinateLimitForce:
    c = osim.CoordinateLimitForce.safeDownCast(f)
    return CoordinateLimitForce(
        name=c.getName(),
        applies_force=bool(c.get_appliesForce()),
        coordinate=c.get_coordinate(),
        upper_stiffness=float(c.get_upper_stiffness()),
        upper_limit=float(c.get_upper_limit()),
        lower_stiffness=float(c.get_lower_stiffness()),
        lower_limit=float(c.get_lower_limit()),
        damping=float(c.get_damping()),
        transition=float(c.get_transition()),
        compute_dissipation_energy=bool(c.get_compute_dissipation_energy()),
    )


def extract(reference: Path) -> ModelDefinition:
    osim.Logger.setLevelString("error")
    model = osim.Model(str(reference))
    model.initSystem()
    geometry = hunt_crossley_geometry(reference)

    muscles, contacts, limits, order = [], [], [], []
    for i in range(model.getForceSet().getSize()):
        f = model.getForceSet().get(i)
        kind = f.getConcreteClassName()
        order.append(f.getName())
        if kind == "Thelen2003Muscle":
            muscles.append(muscle(f))
        elif kind == "HuntCrossleyForce":
            contacts.append(hunt_crossley(f, geometry))
        elif kind == "CoordinateLimitForce":
            limits.append(coordinate_limit(f))
        else:
            raise ValueError(f"unsupported force type {kind}")
    for name, count in (
        ("ControllerSet", model.getControllerSet().getSize()),
        ("ConstraintSet", model.getConstraintSet().getSize()),
        ("MarkerSet", model.getMarkerSet().getSize()),
    ):
        if count:
            raise ValueError(f"reference has a non-empty {name}, which the schema lacks")

    cgs = model.getContactGeometrySet()
    return ModelDefinition(
        schema_version=SCHEMA_VERSION,
        name=model.getName(),
        units=UNITS,
        source={
            "file": reference.name,
            "sha256": hashlib.sha256(reference.read_bytes()).hexdigest(),
            "interpreted_by": f"OpenSim {osim.__version__}",
            "extracted_with": "scripts/extract_model.py",
        },
        credits=model.get_credits(),
        publications=model.get_publications(),
        gravity=vec(model.getGravity()),
        ground=model.getGround().getName(),
        bodies=tuple(body(model.getBodySet().get(i)) for i in range(model.getBodySet().getSize())),
        joints=tuple(
            joint(model.getJointSet().get(i)) for i in range(model.getJointSet().getSize())
        ),
        muscles=tuple(muscles),
        contact_geometry=tuple(contact_geometry(cgs.get(i)) for i in range(cgs.getSize())),
        contact_forces=tuple(contacts),
        coordinate_limit_forces=tuple(limits),
        force_order=tuple(order),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("reference", nargs="?", type=Path, default=REFERENCE_MODEL_PATH)
    parser.add_argument("-o", "--out", type=Path, default=DEFINITION_FILE)
    args = parser.parse_args(argv)
    if not args.reference.is_file():
        parser.error(f"reference model not found: {args.reference}")
    definition = extract(args.reference)
    args.out.write_text(dumps_definition(definition))
    print(
        f"wrote {args.out} ({len(definition.bodies)} bodies, {len(definition.joints)} joints, "
        f"{len(definition.muscles)} muscles, {len(definition.force_order)} forces)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
