"""OpenSim `CoordinateLimitForce` ("ligaments"): passive limit torques on hip, knee and ankle.

As OpenSim 4.6 (`CoordinateLimitForce::extendConnectToModel` / `calcLimitForce`): with
``w = π/180`` for a rotational coordinate (limits, transition in degrees; stiffness in N·m/deg,
damping in N·m/(deg/s)), ``q_up = w·upper_limit``, ``K_up = upper_stiffness / w``, likewise for
the lower side, ``c = damping / w``. Two Simbody `Function::Step`s (quintic
``10x³ − 15x⁴ + 6x⁵``) switch the stiffness on over one transition width beyond each limit:
``K_u(q)`` rises 0 → K_up over [q_up, q_up + w·transition], ``K_l(q)`` falls K_low → 0 over
[q_low − w·transition, q_low]. The generalized force on the coordinate is

    f = −K_u(q)(q − q_up) + K_l(q)(q_low − q) − c (K_u/K_up + K_l/K_low) q̇.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax.numpy as jnp
import numpy as np

from l2run.engines.jax.indexed_writes import add_at
from l2run.engines.jax.static import Static, concrete
from l2run.model.names import COORDINATES, LIGAMENTS

DEGREE_TO_RADIAN = math.pi / 180.0  # SimTK_DEGREE_TO_RADIAN


class LigamentParams(NamedTuple):
    """CoordinateLimitForce parameters in SI units (L,), LIGAMENTS order."""

    coord: Static  # (L,) int index into COORDINATES
    q_up: jnp.ndarray  # rad
    q_low: jnp.ndarray  # rad
    k_up: jnp.ndarray  # N·m/rad
    k_low: jnp.ndarray  # N·m/rad
    damping: jnp.ndarray  # N·m/(rad/s)
    up_end: jnp.ndarray  # rad, end of the upper transition (q_up + w·transition)
    low_start: jnp.ndarray  # rad, start of the lower transition (q_low − w·transition)


def compile_ligaments(definition) -> LigamentParams:
    """Limit-force arrays (numpy) from a `ModelDefinition`, in LIGAMENTS order."""
    by_name = {f.name: f for f in definition.coordinate_limit_forces}
    motion = {c.name: c.motion_type for c in definition.coordinates}
    rows = []
    for name in LIGAMENTS:
        if name not in by_name:
            raise ValueError(f"model definition lacks the coordinate limit force {name}")
        f = by_name[name]
        if f.coordinate not in COORDINATES:
            raise ValueError(f"{name}: coordinate {f.coordinate} is not in q")
        if f.transition <= 0.0:
            raise ValueError(f"{name}: transition must be > 0, got {f.transition}")
        w = DEGREE_TO_RADIAN if motion[f.coordinate] == "rotational" else 1.0
        q_up, q_low = w * f.upper_limit, w * f.lower_limit
        rows.append(
            (
                COORDINATES.index(f.coordinate),
                q_up,
                q_low,
                f.upper_stiffness / w,
                f.lower_stiffness / w,
                f.damping / w,
                q_up + w * f.transition,
                q_low - w * f.transition,
            )
        )
    cols = list(zip(*rows, strict=True))
    return LigamentParams(
        coord=Static(np.array(cols[0], dtype=np.int32)),
        **{
            k: np.array(v, dtype=float)
            for k, v in zip(LigamentParams._fields[1:], cols[1:], strict=True)
        },
    )


def smooth_step(y0, y1, x0, x1, x):
    """Simbody `Function::Step(y0, y1, x0, x1)`: y0 before x0, y1 after x1, quintic between."""
    sign = jnp.sign(x1 - x0)
    inv = 1.0 / (x1 - x0)
    f = jnp.clip((x - x0) * inv, 0.0, 1.0)
    between = y0 + (f * f * f * (10 + f * (6 * f - 15))) * (y1 - y0)
    return jnp.where((x - x0) * sign <= 0, y0, jnp.where((x - x1) * sign >= 0, y1, between))


def limit_forces(p: LigamentParams, q: jnp.ndarray, u: jnp.ndarray) -> jnp.ndarray:
    """Ligament torques (L,) N·m (OpenSim `calcLimitForce`) at coordinates q and speeds u (n_q,)."""
    coord = concrete(p.coord)
    qc, qdot = q[coord], u[coord]
    k_up = smooth_step(0.0, p.k_up, p.q_up, p.up_end, qc)
    k_low = smooth_step(p.k_low, 0.0, p.low_start, p.q_low, qc)
    f_up = -k_up * (qc - p.q_up)
    f_low = k_low * (p.q_low - qc)
    f_damp = -p.damping * (k_up / p.k_up + k_low / p.k_low) * qdot
    return f_up + f_low + f_damp


def ligament_generalized_forces(p: LigamentParams, forces: jnp.ndarray, n_q: int) -> jnp.ndarray:
    """Generalized forces (n_q,): each ligament torque on its own coordinate."""
    return add_at(concrete(p.coord), forces, n_q)
