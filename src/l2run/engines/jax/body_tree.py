"""Compile a list of planar body specifications into `BodyTreeParams` (numpy, no JAX tracing)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from l2run.engines.jax.bodies import DOF_ROT, DOF_TX, DOF_TY, N_DOFS, BodyTreeParams
from l2run.engines.jax.static import Static
from l2run.model.names import COORDINATES

if TYPE_CHECKING:
    from l2run.model.definition import Joint, ModelDefinition

GROUND = "ground"


@dataclass(frozen=True)
class DofSpec:
    """One joint dof: `slope * q[coordinate] + intercept (+ spline(q[coordinate]))`."""

    coordinate: str | None = None
    slope: float = 0.0
    intercept: float = 0.0
    spline: tuple[tuple[float, ...], tuple[float, ...]] | None = None  # SimmSpline knots (x, y)


@dataclass(frozen=True)
class BodySpec:
    """A body with the joint to its parent, planar parts only (m, rad, kg)."""

    name: str
    parent: str
    mass: float
    com: tuple[float, float]
    izz: float
    loc_in_parent: tuple[float, float]
    orient_in_parent: float
    loc_in_child: tuple[float, float]
    orient_in_child: float
    dofs: tuple[DofSpec, DofSpec, DofSpec]  # rotation, translation x, translation y (in F)


def compile_body_tree(
    bodies: Sequence[BodySpec], gravity: Sequence[float]
) -> tuple[BodyTreeParams, list[DofSpec]]:
    """Arrays for `kinematics.py`, plus the spline dofs in the order of `spline_coord`."""
    names = [b.name for b in bodies]
    nb = len(bodies)
    index = {n: i for i, n in enumerate(names)}
    index[GROUND] = nb
    n_q = len(COORDINATES)
    parent = np.array([index[b.parent] for b in bodies], dtype=np.int32)
    ancestors = np.zeros((nb, nb))
    for i in range(nb):
        j = i
        for _ in range(nb + 1):
            if j == nb:
                break
            ancestors[i, j] = 1.0
            j = parent[j]
        else:
            raise ValueError(f"body tree has a cycle through {names[i]!r}")
    splines = [d for b in bodies for d in b.dofs if d.spline is not None]
    dof_coord = np.full((nb, N_DOFS), n_q, dtype=np.int32)
    dof_linear = np.zeros((nb, N_DOFS, 2))
    dof_spline = np.zeros((nb, N_DOFS, len(splines)))
    spline_coord = np.zeros(len(splines), dtype=np.int32)
    s = 0
    for i, b in enumerate(bodies):
        for k, d in enumerate(b.dofs):
            if d.coordinate is not None:
                if d.coordinate not in COORDINATES:
                    raise ValueError(f"{b.name}: unknown coordinate {d.coordinate!r}")
                dof_coord[i, k] = COORDINATES.index(d.coordinate)
            dof_linear[i, k] = (d.slope, d.intercept)
            if d.spline is not None:
                if d.coordinate is None:
                    raise ValueError(f"{b.name}: a spline dof needs a coordinate")
                dof_spline[i, k, s] = 1.0
                spline_coord[s] = dof_coord[i, k]
                s += 1
    tree = BodyTreeParams(
        parent=Static(parent),
        ancestors=Static(ancestors),
        loc_in_parent=np.array([b.loc_in_parent for b in bodies], dtype=float),
        orient_in_parent=np.array([b.orient_in_parent for b in bodies], dtype=float),
        loc_in_child=np.array([b.loc_in_child for b in bodies], dtype=float),
        orient_in_child=np.array([b.orient_in_child for b in bodies], dtype=float),
        dof_coord=Static(dof_coord),
        dof_linear=dof_linear,
        dof_spline=Static(dof_spline),
        spline_coord=Static(spline_coord),
        mass=np.array([b.mass for b in bodies], dtype=float),
        com=np.array([b.com for b in bodies], dtype=float),
        izz=np.array([b.izz for b in bodies], dtype=float),
        gravity=np.asarray(gravity, dtype=float)[:2],
    )
    return tree, splines


# An in-plane joint may only use these axes (unit vectors in its parent offset frame).
_Z_AXIS = (0.0, 0.0, 1.0)
_TRANSLATION_SLOTS = {(1.0, 0.0, 0.0): DOF_TX, (0.0, 1.0, 0.0): DOF_TY}
# Tolerance for "this out-of-plane quantity is zero" (rad, m).
_PLANAR_TOLERANCE = 1e-12


def _planar_angle(orientation: Sequence[float], where: str) -> float:
    """z angle of an X-Y-Z body-fixed orientation that must be a pure z rotation."""
    if abs(orientation[0]) > _PLANAR_TOLERANCE or abs(orientation[1]) > _PLANAR_TOLERANCE:
        raise ValueError(f"{where}: only rotations about z are planar, got {tuple(orientation)}")
    return float(orientation[2])


def _function_dof(function: object, coordinate: str | None) -> DofSpec:
    """DofSpec of an OpenSim function (Constant, LinearFunction, SimmSpline) of one coordinate."""
    from l2run.model.definition import Constant, LinearFunction, SimmSpline

    if isinstance(function, Constant):
        return DofSpec(intercept=float(function.value))
    if coordinate is None:
        raise ValueError(f"{type(function).__name__} needs a coordinate")
    if isinstance(function, LinearFunction):
        slope, intercept = function.coefficients
        return DofSpec(coordinate, float(slope), float(intercept))
    if isinstance(function, SimmSpline):
        return DofSpec(coordinate, spline=(tuple(function.x), tuple(function.y)))
    raise ValueError(f"unsupported joint function {type(function).__name__}")


def _coordinate_dof(joint: Joint, index: int) -> DofSpec:
    """Identity dof of the joint's index-th coordinate, or its constant default if locked."""
    c = joint.coordinates[index]
    if c.locked:
        return DofSpec(intercept=float(c.default_value))
    return DofSpec(c.name, 1.0, 0.0)


def _joint_dofs(joint: Joint) -> tuple[DofSpec, DofSpec, DofSpec]:
    dofs = [DofSpec(), DofSpec(), DofSpec()]
    if joint.type == "PlanarJoint":
        dofs = [_coordinate_dof(joint, i) for i in range(3)]
    elif joint.type == "PinJoint":
        dofs[DOF_ROT] = _coordinate_dof(joint, 0)
    elif joint.type == "CustomJoint":
        for axis in joint.spatial_transform:
            coordinate = axis.coordinates[0] if axis.coordinates else None
            if coordinate is not None and joint.coordinates[0].locked:
                raise ValueError(f"joint {joint.name}: locked CustomJoint coordinates unsupported")
            dof = _function_dof(axis.function, coordinate)
            is_zero = dof.coordinate is None and abs(dof.intercept) <= _PLANAR_TOLERANCE
            if axis.name.startswith("rotation") and tuple(axis.axis) == _Z_AXIS:
                dofs[DOF_ROT] = dof
            elif axis.name.startswith("translation") and tuple(axis.axis) in _TRANSLATION_SLOTS:
                dofs[_TRANSLATION_SLOTS[tuple(axis.axis)]] = dof
            elif not is_zero:
                raise ValueError(f"joint {joint.name}: {axis.name} about {axis.axis} is not planar")
    elif joint.type != "WeldJoint":
        raise ValueError(f"joint {joint.name}: unsupported type {joint.type}")
    return dofs[0], dofs[1], dofs[2]


def body_specs_from_definition(definition: ModelDefinition) -> list[BodySpec]:
    """Planar body specs in BodySet order; raises ValueError on anything out of plane."""
    by_child = {j.child_frame.body: j for j in definition.joints}
    specs = []
    for body in definition.bodies:
        joint = by_child.get(body.name)
        if joint is None:
            raise ValueError(f"body {body.name} has no joint to a parent")
        pf, cf = joint.parent_frame, joint.child_frame
        specs.append(
            BodySpec(
                name=body.name,
                parent=pf.body,
                mass=float(body.mass),
                com=(float(body.mass_center[0]), float(body.mass_center[1])),
                izz=float(body.inertia[2]),
                loc_in_parent=(float(pf.translation[0]), float(pf.translation[1])),
                orient_in_parent=_planar_angle(pf.orientation, f"joint {joint.name} parent"),
                loc_in_child=(float(cf.translation[0]), float(cf.translation[1])),
                orient_in_child=_planar_angle(cf.orientation, f"joint {joint.name} child"),
                dofs=_joint_dofs(joint),
            )
        )
    return specs
