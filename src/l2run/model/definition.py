"""The 2017 runner model as plain, frozen data (our own schema, read from JSON).

`gait9dof18musc.json` (next to this module) is the single source of truth: the OpenSim builder
(`l2run.model.build_opensim`) and the JAX engine both compile from the dataclasses here.
Units follow OpenSim: m, kg, kg·m², rad, s, N — except the CoordinateLimitForce limits, which
OpenSim defines in degrees (see `CoordinateLimitForce`). Vectors are (x, y, z) in the frame named
next to them; Euler angles are OpenSim's body-fixed X-Y-Z sequence (rad).
"""

from __future__ import annotations

import json
import os
import types
import typing
from dataclasses import dataclass, fields, is_dataclass
from pathlib import Path
from typing import Any, ClassVar, Union

SCHEMA_VERSION = 1
DEFINITION_FILE = Path(__file__).with_name("gait9dof18musc.json")
# <repo>/src/l2run/model/definition.py -> <repo>/../shared/reference/gait9dof18musc.osim
REFERENCE_MODEL_PATH = (
    Path(__file__).resolve().parents[3].parent / "shared" / "reference" / "gait9dof18musc.osim"
)
# Lets an installed (non-editable) package find the reference file too.
REFERENCE_ENV_VAR = "L2RUN_REFERENCE_MODEL"

Vec3 = tuple[float, float, float]


def reference_model_path() -> Path | None:
    """Path of the 2017 reference `.osim` (numbers only, never committed), or None if absent."""
    override = os.environ.get(REFERENCE_ENV_VAR)
    path = Path(override) if override else REFERENCE_MODEL_PATH
    return path if path.is_file() else None


# --- functions of one coordinate ------------------------------------------------------------


@dataclass(frozen=True)
class SimmSpline:
    """OpenSim `SimmSpline`: natural cubic spline through the knots (x, y)."""

    kind: ClassVar[str] = "SimmSpline"
    x: tuple[float, ...]
    y: tuple[float, ...]


@dataclass(frozen=True)
class Constant:
    """OpenSim `Constant`: f(q) = value."""

    kind: ClassVar[str] = "Constant"
    value: float


@dataclass(frozen=True)
class LinearFunction:
    """OpenSim `LinearFunction`: f(q) = coefficients[0]·q + coefficients[1]."""

    kind: ClassVar[str] = "LinearFunction"
    coefficients: tuple[float, float]


Function = Union[SimmSpline, Constant, LinearFunction]  # noqa: UP007 (runtime union for parsing)


# --- bodies and joints ------------------------------------------------------------------------


@dataclass(frozen=True)
class Body:
    """A rigid body. `mass_center` in the body frame (m); `inertia` about the mass center in
    body axes (kg·m²) as (xx, yy, zz, xy, xz, yz)."""

    name: str
    mass: float
    mass_center: Vec3
    inertia: tuple[float, float, float, float, float, float]


@dataclass(frozen=True)
class OffsetFrame:
    """A PhysicalOffsetFrame owned by a joint: pose of the joint frame in `body` (m, rad)."""

    name: str
    body: str
    translation: Vec3
    orientation: Vec3


@dataclass(frozen=True)
class Coordinate:
    """A generalised coordinate. Values in rad (rotational) or m (translational)."""

    name: str
    motion_type: str  # "rotational" | "translational" | "coupled"
    default_value: float
    default_speed_value: float
    range: tuple[float, float]
    clamped: bool
    locked: bool
    prescribed: bool
    is_free_to_satisfy_constraints: bool


@dataclass(frozen=True)
class TransformAxis:
    """One of a CustomJoint's six SpatialTransform axes (rotation1..3, translation1..3).

    The axis (in the parent offset frame) carries f(coordinates) radians or metres."""

    name: str
    axis: Vec3
    coordinates: tuple[str, ...]
    function: Function


@dataclass(frozen=True)
class Joint:
    """A joint from `parent_frame` to `child_frame`, in JointSet order.

    `type` is the OpenSim class: PlanarJoint (rz, tx, ty), PinJoint (rz), WeldJoint (none) or
    CustomJoint (then `spatial_transform` holds its six axes; empty otherwise)."""

    name: str
    type: str
    parent_frame: OffsetFrame
    child_frame: OffsetFrame
    coordinates: tuple[Coordinate, ...]
    spatial_transform: tuple[TransformAxis, ...]


# --- muscles ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class PathPoint:
    """A fixed path point at `location` (m) in `body`."""

    kind: ClassVar[str] = "PathPoint"
    name: str
    body: str
    location: Vec3


@dataclass(frozen=True)
class ConditionalPathPoint:
    """A path point that is part of the path only while range[0] <= coordinate <= range[1]."""

    kind: ClassVar[str] = "ConditionalPathPoint"
    name: str
    body: str
    location: Vec3
    coordinate: str
    range: tuple[float, float]


@dataclass(frozen=True)
class MovingPathPoint:
    """A path point whose x, y, z (m, in `body`) are functions of coordinates (rad)."""

    kind: ClassVar[str] = "MovingPathPoint"
    name: str
    body: str
    x_coordinate: str
    x_location: Function
    y_coordinate: str
    y_location: Function
    z_coordinate: str
    z_location: Function


AnyPathPoint = Union[PathPoint, ConditionalPathPoint, MovingPathPoint]  # noqa: UP007


@dataclass(frozen=True)
class Muscle:
    """A Thelen2003Muscle with every property OpenSim 4.6 uses (defaults made explicit).

    Forces in N, lengths in m, angles in rad, times in s; `max_contraction_velocity` in optimal
    fibre lengths per second; strains and shape factors dimensionless."""

    name: str
    type: str
    path: tuple[AnyPathPoint, ...]
    applies_force: bool
    min_control: float
    max_control: float
    optimal_force: float
    max_isometric_force: float
    optimal_fiber_length: float
    tendon_slack_length: float
    pennation_angle_at_optimal: float
    max_contraction_velocity: float
    ignore_tendon_compliance: bool
    ignore_activation_dynamics: bool
    default_activation: float
    default_fiber_length: float
    fmax_tendon_strain: float
    fmax_muscle_strain: float
    kshape_active: float
    kshape_passive: float
    af: float
    flen: float
    fv_linear_extrap_threshold: float
    maximum_pennation_angle: float
    activation_time_constant: float
    deactivation_time_constant: float
    minimum_activation: float


# Our field name -> OpenSim 4.6 Thelen2003Muscle property name (for get_/set_ accessors).
THELEN_PROPERTIES: dict[str, str] = {
    "applies_force": "appliesForce",
    "min_control": "min_control",
    "max_control": "max_control",
    "optimal_force": "optimal_force",
    "max_isometric_force": "max_isometric_force",
    "optimal_fiber_length": "optimal_fiber_length",
    "tendon_slack_length": "tendon_slack_length",
    "pennation_angle_at_optimal": "pennation_angle_at_optimal",
    "max_contraction_velocity": "max_contraction_velocity",
    "ignore_tendon_compliance": "ignore_tendon_compliance",
    "ignore_activation_dynamics": "ignore_activation_dynamics",
    "default_activation": "default_activation",
    "default_fiber_length": "default_fiber_length",
    "fmax_tendon_strain": "FmaxTendonStrain",
    "fmax_muscle_strain": "FmaxMuscleStrain",
    "kshape_active": "KshapeActive",
    "kshape_passive": "KshapePassive",
    "af": "Af",
    "flen": "Flen",
    "fv_linear_extrap_threshold": "fv_linear_extrap_threshold",
    "maximum_pennation_angle": "maximum_pennation_angle",
    "activation_time_constant": "activation_time_constant",
    "deactivation_time_constant": "deactivation_time_constant",
    "minimum_activation": "minimum_activation",
}


# --- contact ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ContactHalfSpace:
    """Half-space fixed to `body`; with orientation (0, 0, -pi/2) its outward normal is +y."""

    kind: ClassVar[str] = "ContactHalfSpace"
    name: str
    body: str
    location: Vec3
    orientation: Vec3


@dataclass(frozen=True)
class ContactSphere:
    """Sphere of `radius` (m) centred at `location` (m) in `body`."""

    kind: ClassVar[str] = "ContactSphere"
    name: str
    body: str
    location: Vec3
    orientation: Vec3
    radius: float


AnyContactGeometry = Union[ContactHalfSpace, ContactSphere]  # noqa: UP007


@dataclass(frozen=True)
class HuntCrossleyForce:
    """Hunt–Crossley contact among `geometry` (one ContactParameters set).

    stiffness in N/m^2 (OpenSim's Hertz-style constant), dissipation in s/m, frictions
    dimensionless, viscous_friction in N·s/m, transition_velocity in m/s."""

    name: str
    applies_force: bool
    geometry: tuple[str, ...]
    stiffness: float
    dissipation: float
    static_friction: float
    dynamic_friction: float
    viscous_friction: float
    transition_velocity: float


@dataclass(frozen=True)
class CoordinateLimitForce:
    """Passive limit torque on `coordinate` ("ligament").

    OpenSim units for a rotational coordinate: limits and transition in degrees, stiffnesses in
    N·m/degree, damping in N·m/(degree/s)."""

    name: str
    applies_force: bool
    coordinate: str
    upper_stiffness: float
    upper_limit: float
    lower_stiffness: float
    lower_limit: float
    damping: float
    transition: float
    compute_dissipation_energy: bool


# --- the model -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelDefinition:
    """Everything needed to rebuild the model; lists are in OpenSim set order."""

    schema_version: int
    name: str
    units: dict[str, str]
    source: dict[str, str]
    credits: str
    publications: str
    gravity: Vec3
    ground: str
    bodies: tuple[Body, ...]
    joints: tuple[Joint, ...]
    muscles: tuple[Muscle, ...]
    contact_geometry: tuple[AnyContactGeometry, ...]
    contact_forces: tuple[HuntCrossleyForce, ...]
    coordinate_limit_forces: tuple[CoordinateLimitForce, ...]
    force_order: tuple[str, ...]

    def __post_init__(self) -> None:
        _validate(self)

    @property
    def coordinates(self) -> tuple[Coordinate, ...]:
        """All coordinates in JointSet order (includes the locked lumbar_extension)."""
        return tuple(c for j in self.joints for c in j.coordinates)

    @property
    def default_pose(self) -> dict[str, float]:
        """Coordinate name -> default value (rad or m): the model's default pose."""
        return {c.name: c.default_value for c in self.coordinates}

    @property
    def default_speeds(self) -> dict[str, float]:
        """Coordinate name -> default speed (rad/s or m/s)."""
        return {c.name: c.default_speed_value for c in self.coordinates}

    def body(self, name: str) -> Body:
        return _by_name(self.bodies, name, "body")

    def joint(self, name: str) -> Joint:
        return _by_name(self.joints, name, "joint")

    def coordinate(self, name: str) -> Coordinate:
        return _by_name(self.coordinates, name, "coordinate")

    def muscle(self, name: str) -> Muscle:
        return _by_name(self.muscles, name, "muscle")


def _by_name(items: tuple[Any, ...], name: str, what: str) -> Any:
    for item in items:
        if item.name == name:
            return item
    raise KeyError(f"no {what} named {name!r}; have {[i.name for i in items]}")


def _validate(d: ModelDefinition) -> None:
    """Cross-references must resolve; a broken file fails here, not deep in a builder."""
    if d.schema_version != SCHEMA_VERSION:
        raise ValueError(f"schema_version {d.schema_version}, expected {SCHEMA_VERSION}")
    bodies = {d.ground} | {b.name for b in d.bodies}
    coords = {c.name for c in d.coordinates}
    geoms = {g.name for g in d.contact_geometry}

    def need(value: str, known: set[str], where: str) -> None:
        if value not in known:
            raise ValueError(f"{where}: unknown name {value!r}")

    for j in d.joints:
        need(j.parent_frame.body, bodies, f"joint {j.name} parent")
        need(j.child_frame.body, bodies, f"joint {j.name} child")
        if (j.type == "CustomJoint") != bool(j.spatial_transform):
            raise ValueError(f"joint {j.name}: spatial_transform only (and always) on CustomJoint")
        for axis in j.spatial_transform:
            for c in axis.coordinates:
                need(c, coords, f"joint {j.name} {axis.name}")
    for m in d.muscles:
        for p in m.path:
            need(p.body, bodies, f"muscle {m.name} point {p.name}")
            if isinstance(p, ConditionalPathPoint):
                need(p.coordinate, coords, f"muscle {m.name} point {p.name}")
            if isinstance(p, MovingPathPoint):
                for c in (p.x_coordinate, p.y_coordinate, p.z_coordinate):
                    need(c, coords, f"muscle {m.name} point {p.name}")
    for g in d.contact_geometry:
        need(g.body, bodies, f"contact geometry {g.name}")
    for f in d.contact_forces:
        for g in f.geometry:
            need(g, geoms, f"contact force {f.name}")
    for f in d.coordinate_limit_forces:
        need(f.coordinate, coords, f"coordinate limit force {f.name}")
    names = [x.name for x in (*d.muscles, *d.contact_forces, *d.coordinate_limit_forces)]
    if sorted(names) != sorted(d.force_order) or len(set(names)) != len(names):
        raise ValueError(f"force_order {list(d.force_order)} does not match the forces {names}")


# --- JSON (de)serialisation ------------------------------------------------------------------


def definition_to_dict(obj: Any) -> Any:
    """Dataclasses -> JSON-ready dicts/lists; polymorphic entries get a leading "type" key."""
    if is_dataclass(obj):
        out: dict[str, Any] = {}
        kind = getattr(type(obj), "kind", None)
        if kind is not None:
            out["type"] = kind
        for f in fields(obj):
            out[f.name] = definition_to_dict(getattr(obj, f.name))
        return out
    if isinstance(obj, tuple | list):
        return [definition_to_dict(x) for x in obj]
    if isinstance(obj, dict):
        return {k: definition_to_dict(v) for k, v in obj.items()}
    return obj


def dumps_definition(definition: ModelDefinition) -> str:
    """The JSON text of a definition: indent 2, field order, trailing newline; lists of plain
    numbers/strings stay on one line so vectors and spline knots read as rows."""
    return _format(definition_to_dict(definition), 0) + "\n"


def _format(value: Any, depth: int) -> str:
    pad, inner = "  " * depth, "  " * (depth + 1)
    if isinstance(value, dict):
        if not value:
            return "{}"
        items = [f"{inner}{json.dumps(k)}: {_format(v, depth + 1)}" for k, v in value.items()]
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(value, list) and any(isinstance(v, dict | list) for v in value):
        items = [f"{inner}{_format(v, depth + 1)}" for v in value]
        return "[\n" + ",\n".join(items) + "\n" + pad + "]"
    return json.dumps(value)  # scalars and flat lists (repr of floats round-trips exactly)


def load_definition(path: str | Path | None = None) -> ModelDefinition:
    """Read a model definition (default: the packaged `gait9dof18musc.json`).

    Raises ValueError (with the offending JSON location) on a malformed file."""
    path = Path(path) if path is not None else DEFINITION_FILE
    try:
        raw = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc})") from exc
    return definition_from_dict(raw)


def definition_from_dict(raw: dict[str, Any]) -> ModelDefinition:
    """Parse the JSON structure produced by `definition_to_dict`."""
    return _parse(ModelDefinition, raw, "$")


def _parse(hint: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(hint)
    if is_dataclass(hint):
        return _parse_dataclass(hint, value, where)
    if origin in (Union, types.UnionType):
        return _parse_union(typing.get_args(hint), value, where)
    if origin is tuple:
        args = typing.get_args(hint)
        if not isinstance(value, list):
            raise ValueError(f"{where}: expected a list, got {type(value).__name__}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_parse(args[0], v, f"{where}[{i}]") for i, v in enumerate(value))
        if len(value) != len(args):
            raise ValueError(f"{where}: expected {len(args)} values, got {len(value)}")
        pairs = enumerate(zip(args, value, strict=True))
        return tuple(_parse(a, v, f"{where}[{i}]") for i, (a, v) in pairs)
    if origin is dict:
        if not isinstance(value, dict):
            raise ValueError(f"{where}: expected an object")
        return {str(k): str(v) for k, v in value.items()}
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if hint is int or hint is bool or hint is str:
        if type(value) is not hint:
            raise ValueError(f"{where}: expected {hint.__name__}, got {value!r}")
        return value
    raise TypeError(f"{where}: unsupported type hint {hint!r}")  # a bug in this module


def _parse_union(options: tuple[Any, ...], value: Any, where: str) -> Any:
    if not isinstance(value, dict) or "type" not in value:
        raise ValueError(f"{where}: expected an object with a 'type' key")
    for option in options:
        if getattr(option, "kind", None) == value["type"]:
            return _parse_dataclass(option, value, where)
    kinds = [getattr(o, "kind", "?") for o in options]
    raise ValueError(f"{where}: type {value['type']!r} is not one of {kinds}")


def _parse_dataclass(cls: Any, value: Any, where: str) -> Any:
    if not isinstance(value, dict):
        raise ValueError(f"{where}: expected an object for {cls.__name__}")
    hints = typing.get_type_hints(cls)
    expected = {f.name for f in fields(cls)}
    given = set(value) - ({"type"} if getattr(cls, "kind", None) else set())
    if given != expected:
        missing, extra = sorted(expected - given), sorted(given - expected)
        raise ValueError(f"{where} ({cls.__name__}): missing keys {missing}, unknown keys {extra}")
    kwargs = {n: _parse(hints[n], value[n], f"{where}.{n}") for n in expected}
    return cls(**kwargs)
