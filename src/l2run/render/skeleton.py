"""How the planar runner is drawn: which body origins are joined by bones, and where the feet touch.

Everything here is in the sagittal plane of the ground frame: x forward (m), y up (m), angles
counter-clockwise about z (rad). A body pose is ``(x, y, angle)`` of the body's origin.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

# Bones join the origin of a parent body to the origin of its child (each child origin sits on
# the joint centre of gait9dof18musc: hip, knee, ankle, subtalar, mtp, lumbar, neck).
BONES_RIGHT: tuple[tuple[str, str], ...] = (
    ("pelvis", "femur_r"),
    ("femur_r", "tibia_r"),
    ("tibia_r", "talus_r"),
    ("talus_r", "calcn_r"),
    ("calcn_r", "toes_r"),
)
BONES_LEFT: tuple[tuple[str, str], ...] = tuple(
    (a.replace("_r", "_l"), b.replace("_r", "_l")) for a, b in BONES_RIGHT
)
BONES_TRUNK: tuple[tuple[str, str], ...] = (("pelvis", "torso"), ("torso", "head"))

# Points fixed in a body (body frame, m) that finish the figure: toe tips and the head's centre.
TOE_TIP_LOCAL = (0.06, 0.0)
HEAD_CENTRE_LOCAL = (0.0, 0.1)
HEAD_RADIUS = 0.1  # m, drawn only

# Foot contact spheres of gait9dof18musc (body, centre in body frame (m), radius (m)); a test
# checks them against the reference .osim.
CONTACT_SPHERES: tuple[tuple[str, str, tuple[float, float], float], ...] = (
    ("r_heel", "calcn_r", (0.03, 0.04), 0.05),
    ("r_toe", "toes_r", (0.03, 0.04), 0.05),
    ("l_heel", "calcn_l", (0.03, 0.04), 0.05),
    ("l_toe", "toes_l", (0.03, 0.04), 0.05),
)
CONTACT_SPHERE_NAMES = tuple(name for name, *_ in CONTACT_SPHERES)


def body_point(pose: tuple[float, float, float], local: tuple[float, float]) -> np.ndarray:
    """Ground-frame position (m) of a point given in a body's frame, from the body's planar pose."""
    x, y, angle = pose
    c, s = np.cos(angle), np.sin(angle)
    return np.array([x + c * local[0] - s * local[1], y + s * local[0] + c * local[1]])


def contact_sphere_positions(
    poses: Mapping[str, tuple[float, float, float]],
) -> np.ndarray:
    """(4, 3) rows (x, y, radius) of the foot contact spheres in the ground frame (m).

    Spheres whose body is missing from ``poses`` come back as NaN rows.
    """
    out = np.full((len(CONTACT_SPHERES), 3), np.nan)
    for i, (_, body, local, radius) in enumerate(CONTACT_SPHERES):
        if body in poses:
            out[i, :2] = body_point(poses[body], local)
            out[i, 2] = radius
    return out
