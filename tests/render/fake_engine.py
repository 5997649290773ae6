"""A kinematic stand-in for an engine, so render tests run in milliseconds without OpenSim.

It walks a stick figure with the gait9dof18musc joint offsets (a sinusoidal gait, not physics) and
answers the Engine protocol methods the recorder uses.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from l2run.render.recording import Recorder

STEP = 0.01  # s
SPEED = 1.5  # m/s forward
GAIT_FREQUENCY = 1.2  # Hz
PELVIS_HEIGHT = 0.94  # m

# child body -> (parent, joint location in parent frame (m), joint name or None for welds)
TREE = {
    "torso": ("pelvis", (-0.1007, 0.0815), "back"),
    "head": ("torso", (0.0, 0.55), None),
    "femur_r": ("pelvis", (-0.0707, -0.0661), "hip_r"),
    "tibia_r": ("femur_r", (0.0, -0.40), "knee_r"),
    "talus_r": ("tibia_r", (0.0, -0.43), "ankle_r"),
    "calcn_r": ("talus_r", (-0.04877, -0.04195), None),
    "toes_r": ("calcn_r", (0.1788, -0.002), None),
    "femur_l": ("pelvis", (-0.0707, -0.0661), "hip_l"),
    "tibia_l": ("femur_l", (0.0, -0.40), "knee_l"),
    "talus_l": ("tibia_l", (0.0, -0.43), "ankle_l"),
    "calcn_l": ("talus_l", (-0.04877, -0.04195), None),
    "toes_l": ("calcn_l", (0.1788, -0.002), None),
}
MUSCLE_ATTACH = [  # (origin body, local, insertion body, local), right side; left mirrors
    ("pelvis", (-0.12, -0.10), "tibia_r", (-0.03, -0.05)),  # hamstrings
    ("femur_r", (0.005, -0.21), "tibia_r", (-0.03, -0.04)),  # bifemsh
    ("pelvis", (-0.13, 0.02), "femur_r", (-0.02, -0.10)),  # glut_max
    ("pelvis", (-0.06, 0.09), "femur_r", (0.00, -0.05)),  # iliopsoas
    ("pelvis", (-0.03, -0.03), "tibia_r", (0.06, 0.02)),  # rect_fem
    ("femur_r", (0.03, -0.19), "tibia_r", (0.055, 0.025)),  # vasti
    ("femur_r", (-0.02, -0.39), "calcn_r", (0.0, 0.031)),  # gastroc
    ("tibia_r", (-0.002, -0.15), "calcn_r", (0.0, 0.031)),  # soleus
    ("tibia_r", (0.018, -0.16), "calcn_r", (0.117, 0.018)),  # tib_ant
]


def _compose(pose, local):
    x, y, a = pose
    c, s = np.cos(a), np.sin(a)
    return (x + c * local[0] - s * local[1], y + s * local[0] + c * local[1])


class FakeEngine:
    """Engine-protocol stand-in: a kinematic gait, deterministic in time."""

    name = "fake"

    def __init__(self) -> None:
        self._t = 0.0
        self._last = np.zeros(18)

    def reset(self, course=None) -> None:
        self._t = 0.0

    def step(self, excitations) -> None:
        self._last = np.asarray(excitations, dtype=float)
        self._t = round(self._t + STEP, 10)

    @property
    def time(self) -> float:
        return self._t

    def _joint_angles(self) -> dict[str, float]:
        ph = 2 * np.pi * GAIT_FREQUENCY * self._t
        return {
            "back": -0.14,
            "hip_r": 0.45 * np.sin(ph),
            "knee_r": -0.6 * (0.5 + 0.5 * np.sin(ph + 1.2)),
            "ankle_r": 0.15 * np.sin(ph),
            "hip_l": 0.45 * np.sin(ph + np.pi),
            "knee_l": -0.6 * (0.5 + 0.5 * np.sin(ph + np.pi + 1.2)),
            "ankle_l": 0.15 * np.sin(ph + np.pi),
        }

    def body_poses(self) -> dict[str, tuple[float, float, float]]:
        ph = 2 * np.pi * GAIT_FREQUENCY * self._t
        poses = {"pelvis": (SPEED * self._t, PELVIS_HEIGHT + 0.02 * np.sin(2 * ph), 0.05)}
        angles = self._joint_angles()
        for child, (parent, loc, joint) in TREE.items():
            px, py = _compose(poses[parent], loc)
            poses[child] = (px, py, poses[parent][2] + (angles[joint] if joint else 0.0))
        return {k: (float(a), float(b), float(c)) for k, (a, b, c) in poses.items()}

    def muscle_paths(self) -> list[np.ndarray]:
        poses = self.body_poses()
        out = []
        for side in ("r", "l"):
            for ob, ol, ib, il in MUSCLE_ATTACH:
                ob, ib = ob.replace("_r", f"_{side}"), ib.replace("_r", f"_{side}")
                a, b = np.array(_compose(poses[ob], ol)), np.array(_compose(poses[ib], il))
                out.append(np.array([a, 0.5 * (a + b) + [0.01, 0.0], b]))
        return out

    def activations(self) -> np.ndarray:
        ph = 2 * np.pi * GAIT_FREQUENCY * self._t
        return 0.5 + 0.5 * np.sin(ph + np.arange(18) * 0.7)

    def fiber_lengths(self) -> np.ndarray:
        return np.full(18, 0.1)

    def contact_forces(self) -> dict[str, np.ndarray]:
        poses = self.body_poses()
        out = {}
        for side in ("r", "l"):
            depth = max(0.0, 0.06 - poses[f"calcn_{side}"][1])
            out[f"foot_{side}"] = np.array([-50.0 * depth, 8000.0 * depth])
        return out

    def ligament_forces(self) -> np.ndarray:
        return np.zeros(6)

    def observation(self) -> np.ndarray:
        obs = np.zeros(41)
        poses = self.body_poses()
        ang = self._joint_angles()
        obs[0], obs[1], obs[2] = poses["pelvis"][2], poses["pelvis"][0], poses["pelvis"][1]
        for i, j in enumerate(("hip_r", "knee_r", "ankle_r", "hip_l", "knee_l", "ankle_l")):
            obs[6 + i] = ang[j]
        return obs


def record_fake_episode(path: Path, steps: int = 40, obstacles=None) -> Path:
    engine = FakeEngine()
    engine.reset()
    meta = {"engine": engine.name, "seed": 7, "difficulty": 2}
    if obstacles is not None:
        meta["obstacles"] = obstacles
    rec = Recorder(path, meta)
    rec.capture(engine)
    for _ in range(steps):
        x0 = engine.body_poses()["pelvis"][0]
        action = np.full(18, 0.3)
        engine.step(action)
        rec.capture(engine, reward=engine.body_poses()["pelvis"][0] - x0, action=action)
    out = rec.close()
    assert out == path
    return path
