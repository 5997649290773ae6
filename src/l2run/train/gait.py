"""A hand-designed periodic gait controller with a small vector of tunable parameters.

The controller is the seed of the pretrained runner: a clock drives target joint angles
(a short Fourier series per joint, the left leg half a period behind the right one), a PD law
turns the angle error into a normalised joint torque, and each muscle is excited in proportion
to how much it helps produce that torque (the sign table below: which way each muscle turns
each joint in the 2017 model's default pose). A pelvis-tilt term keeps the trunk upright and a
forward-speed term moves the hip targets, as in SIMBICON-style balance feedback.

Everything is read from the seed's 41-value observation (ground frame, m, rad, s), so the
same controller runs in the OpenSim and JAX engines. The parameters are found by CMA-ES
(`l2run.train.gait_search`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from l2run.train.controller_params import read_policy_file, split_params, write_policy_file

CONTROL_STEP_S = 0.01  # one environment step (s)
KIND = "gait"

# Observation indices (the seed's order, see l2run.observation.OBSERVATION_NAMES).
OBS_PELVIS_TILT = 0
OBS_PELVIS_TILT_SPEED = 3
OBS_PELVIS_VX = 4
OBS_JOINT_ANGLES = slice(6, 12)  # hip, knee, ankle right; then left (rad)
OBS_JOINT_SPEEDS = slice(12, 18)  # the same order (rad/s)

# Sign of each muscle's moment arm about (hip, knee, ankle) of its own leg, in MUSCLES order for
# one leg (hamstrings, bifemsh, glut_max, iliopsoas, rect_fem, vasti, gastroc, soleus, tib_ant).
# Positive = flexes the hip / extends the knee (knee angle is negative when bent) /
# dorsiflexes the ankle. Read off the 2017 model's moment arms at its default pose.
MUSCLE_JOINT_SIGN = np.array(
    [
        [-1, -1, 0],  # hamstrings: hip extensor, knee flexor
        [0, -1, 0],  # biceps femoris short head: knee flexor
        [-1, 0, 0],  # gluteus maximus: hip extensor
        [1, 0, 0],  # iliopsoas: hip flexor
        [1, 1, 0],  # rectus femoris: hip flexor, knee extensor
        [0, 1, 0],  # vasti: knee extensor
        [0, -1, -1],  # gastrocnemius: knee flexor, plantarflexor
        [0, 0, -1],  # soleus: plantarflexor
        [0, 0, 1],  # tibialis anterior: dorsiflexor
    ],
    dtype=float,
)

# Parameter vector layout: name -> length. Angles in rad, gains per rad (or per rad/s), period s.
PARAM_LAYOUT: tuple[tuple[str, int], ...] = (
    ("hip", 3),  # mean, cos, sin of the hip target (rad)
    ("knee", 5),  # mean, cos, sin, cos2, sin2 of the knee target (rad)
    ("ankle", 3),  # mean, cos, sin of the ankle target (rad)
    ("kp", 3),  # PD stiffness per joint (normalised torque per rad)
    ("kd", 3),  # PD damping per joint (normalised torque per rad/s)
    ("tilt", 3),  # pelvis tilt target (rad), tilt gain, tilt-speed gain on both hips
    ("speed", 2),  # target forward speed (m/s), speed gain on the hip targets (rad per m/s)
    ("base", 1),  # baseline excitation of every muscle (co-contraction), in [0, 1]
    ("period", 1),  # gait period (s)
)
N_PARAMS = sum(n for _, n in PARAM_LAYOUT)

# A plausible walking pattern to start the search from (hand-tuned from textbook gait angles).
INITIAL_PARAMS = np.array(
    [
        0.15, 0.35, 0.0,  # hip: flexed on average, ±0.35 rad swing
        -0.5, 0.3, 0.3, 0.0, 0.0,  # knee: bent ~30°, bends more in swing
        0.0, 0.15, 0.0,  # ankle
        2.0, 2.0, 1.0,  # kp
        0.2, 0.2, 0.1,  # kd
        -0.1, 2.0, 0.2,  # tilt target, gain, speed gain
        1.0, 0.1,  # speed target, gain
        0.05,  # base excitation
        1.0,  # period
    ]
)  # fmt: skip


def unpack(params: Any, xp: Any = np) -> dict[str, Any]:
    """Split a flat parameter vector into its named groups (see `PARAM_LAYOUT`)."""
    return split_params(params, PARAM_LAYOUT, KIND, xp)


def joint_targets(p: dict[str, Any], phase: Any, xp: Any = np) -> Any:
    """Target (hip, knee, ankle) angles (rad) at a gait phase in [0, 1)."""
    w = 2.0 * np.pi * phase
    c, s, c2, s2 = xp.cos(w), xp.sin(w), xp.cos(2 * w), xp.sin(2 * w)
    hip = p["hip"][0] + p["hip"][1] * c + p["hip"][2] * s
    knee = p["knee"][0] + p["knee"][1] * c + p["knee"][2] * s + p["knee"][3] * c2
    knee = knee + p["knee"][4] * s2
    ankle = p["ankle"][0] + p["ankle"][1] * c + p["ankle"][2] * s
    # The knee cannot hyper-extend (model limit ~0.17 rad); keep targets inside the joint range.
    return xp.stack([hip, xp.minimum(knee, 0.0), ankle])


def excitations(params: Any, obs: Any, t: Any, xp: Any = np) -> Any:
    """Muscle excitations (18,) in [0, 1] for observation `obs` (41,) at time `t` (s).

    Pure and branch-free: with `xp=jax.numpy` it jits and vmaps (the JAX gait search).
    """
    p = unpack(params, xp)
    obs = np.asarray(obs, dtype=float) if xp is np else obs
    period = xp.maximum(p["period"][0], 0.2)
    q, u = obs[OBS_JOINT_ANGLES], obs[OBS_JOINT_SPEEDS]
    tilt_target, k_tilt, k_tilt_speed = p["tilt"][0], p["tilt"][1], p["tilt"][2]
    # Leaning back more than wanted (tilt above target) -> flex the hips: through the stance
    # foot that pitches the trunk forward again. The gain's sign is left to the search.
    trunk = k_tilt * (obs[OBS_PELVIS_TILT] - tilt_target)
    trunk = trunk + k_tilt_speed * obs[OBS_PELVIS_TILT_SPEED]
    step_out = p["speed"][1] * (obs[OBS_PELVIS_VX] - p["speed"][0])
    hip_only = xp.asarray([1.0, 0.0, 0.0])
    signs = xp.asarray(MUSCLE_JOINT_SIGN)
    legs = []
    for leg, offset in ((0, 0.0), (1, 0.5)):
        phase = (t / period + offset) % 1.0
        target = joint_targets(p, phase, xp) + step_out * hip_only
        j = slice(3 * leg, 3 * leg + 3)
        torque = p["kp"] * (target - q[j]) - p["kd"] * u[j] + trunk * hip_only
        drive = signs @ torque  # > 0: the muscle helps the wanted torque
        legs.append(p["base"][0] + xp.maximum(drive, 0.0))
    return xp.clip(xp.concatenate(legs), 0.0, 1.0)


def initial_memory(xp: Any = np) -> Any:
    """The controller's memory at reset: the time since reset (s), as a (1,) array."""
    return xp.zeros(1)


def control(params: Any, memory: Any, obs: Any, xp: Any = np) -> tuple[Any, Any]:
    """`excitations` behind the controller interface the search uses: (new memory, action)."""
    return memory + CONTROL_STEP_S, excitations(params, obs, memory[0], xp)


@dataclass
class GaitPolicy:
    """Stateful policy: counts steps since `reset()` to know the time (not in the observation)."""

    params: np.ndarray
    meta: dict = field(default_factory=dict)
    _step: int = 0

    def reset(self) -> None:
        self._step = 0

    def act(self, obs: np.ndarray) -> np.ndarray:
        a = excitations(self.params, obs, self._step * CONTROL_STEP_S)
        self._step += 1
        return a

    def save(self, path: str | Path) -> None:
        """Write the parameters and metadata as JSON (kind "gait")."""
        write_policy_file(path, KIND, self.params, self.meta)

    @classmethod
    def load(cls, path: str | Path) -> GaitPolicy:
        return cls(*read_policy_file(path, KIND))
