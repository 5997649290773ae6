"""Compile a list of planar body specifications into `BodyTreeParams` (numpy, no JAX tracing)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from l2run.engines.jax.bodies import N_DOFS, BodyTreeParams
from l2run.model.names import COORDINATES

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
        parent=parent,
        ancestors=ancestors,
        loc_in_parent=np.array([b.loc_in_parent for b in bodies], dtype=float),
        orient_in_parent=np.array([b.orient_in_parent for b in bodies], dtype=float),
        loc_in_child=np.array([b.loc_in_child for b in bodies], dtype=float),
        orient_in_child=np.array([b.orient_in_child for b in bodies], dtype=float),
        dof_coord=dof_coord,
        dof_linear=dof_linear,
        dof_spline=dof_spline,
        spline_coord=spline_coord,
        mass=np.array([b.mass for b in bodies], dtype=float),
        com=np.array([b.com for b in bodies], dtype=float),
        izz=np.array([b.izz for b in bodies], dtype=float),
        gravity=np.asarray(gravity, dtype=float)[:2],
    )
    return tree, splines
