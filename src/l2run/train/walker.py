"""A balance-feedback walking controller driven by foot contact (SIMBICON with muscles).

Unlike the clock-driven `l2run.train.gait` controller, this one follows what the body does: a
two-state machine (which leg is in stance) switches when the swing foot touches the ground,
so a stumble shortens or lengthens the step instead of desynchronising the pattern. The laws
follow Yin, Loken & van de Panne, SIMBICON (SIGGRAPH 2007), with muscle excitations in place
of joint torques (Wang, Hamner, Delp & Koltun 2012 did the same with CMA-ES):

* swing hip: PD towards a thigh angle in the ground frame, moved forward when the centre of
  mass is ahead of the stance ankle or moving fast (the balance feedback: a runner that tips
  forward catches itself with a longer step);
* stance hip: whatever torque keeps the trunk (rigid with the pelvis in this model) at its
  target pitch, minus the swing hip's torque (the pelvis feels both hips' reactions);
* knees and ankles: PD towards targets that depend on the phase (swing knee folds to clear
  the ground, then extends to land; the stance ankle pushes off late in stance).

A PD output is a normalised joint torque; each muscle is excited by how much it helps (the
sign table `gait.MUSCLE_JOINT_SIGN`), the iliopsoas scaled up by the course's psoas weakness.
Everything comes from the seed's 41-value observation (ground frame; m, rad, s) plus a
small memory (`MEMORY_LAYOUT`), so the controller runs unchanged in the OpenSim and JAX
engines; with `xp=jax.numpy` it is branch-free and vmaps over candidates in the CMA-ES search
(`l2run.train.gait_search`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from l2run.train.controller_params import read_policy_file, split_params, write_policy_file
from l2run.train.gait import CONTROL_STEP_S, MUSCLE_JOINT_SIGN

KIND = "walker"

# Observation indices (see l2run.observation.OBSERVATION_NAMES).
OBS_PELVIS_TILT = 0
OBS_PELVIS_X = 1
OBS_PELVIS_TILT_SPEED = 3
OBS_JOINT_ANGLES = slice(6, 12)  # hip, knee, ankle: right, then left (rad)
OBS_JOINT_SPEEDS = slice(12, 18)  # rad/s, same order
OBS_COM_X = 18
OBS_COM_VX = 20
# (x, y) of each leg's toes and talus origins, indexed [leg] with leg 0 = right, 1 = left.
OBS_TOES_X = (30, 28)
OBS_TOES_Y = (31, 29)
OBS_TALUS_X = (34, 32)
OBS_TALUS_Y = (35, 33)
OBS_PSOAS = (37, 36)  # psoas strength multiplier: right, left
OBS_OBSTACLE_DX = 38  # next obstacle's centre x minus pelvis x (m); 100 when none is ahead
OBS_OBSTACLE_Y = 39  # its centre height (m)
OBS_OBSTACLE_R = 40  # its radius (m)

# Heights (m) of the talus and toes origins with the foot flat on the ground in the model's
# default pose: a foot's clearance is how far both have risen above these.
TALUS_Y_FLAT_M = 0.023
TOES_Y_FLAT_M = -0.027
CONTACT_CLEARANCE_M = 0.02  # a foot whose heel or toes is lower than this touches the ground

PSOAS_MUSCLE = 3  # iliopsoas' index among one leg's nine muscles
N_LEG_MUSCLES = 9
MIN_PSOAS_STRENGTH = 0.3  # weaker than osim-rl ever draws (0.5); keeps the division finite

# Parameter layout: name -> length. Angles rad, gains normalised torque per rad (per rad/s),
# times s, distances m.
PARAM_LAYOUT: tuple[tuple[str, int], ...] = (
    ("swing_hip", 3),  # thigh target (rad, ground frame), gain on COM-ahead (rad/m) and speed
    ("hip_gain", 2),  # kp, kd of the swing hip
    ("torso", 3),  # pitch target (rad), kp, kd of the trunk through the stance hip
    ("swing_knee", 3),  # knee target early in swing, late in swing (rad), switch time (s)
    ("stance_knee", 1),  # knee target in stance (rad)
    ("knee_gain", 4),  # kp, kd in swing; kp, kd in stance
    ("ankle", 2),  # ankle target in swing, in stance (rad)
    ("ankle_gain", 2),  # kp, kd
    ("push", 2),  # push-off: plantarflexion torque, time into stance it starts (s)
    ("timing", 2),  # shortest and longest time (s) before the legs swap
    ("base", 1),  # baseline excitation of every muscle (co-contraction), in [0, 1]
    # Stepping over: while the next obstacle's centre is less than this far ahead of the pelvis
    # (m), the swing thigh and early-swing knee targets move by these gains (rad per m of the
    # obstacle's top height), lifting the swing foot over it.
    ("obstacle", 3),  # look-ahead (m), thigh gain, knee-fold gain
    # Getting going: from standing, the trunk's pitch target starts this much further
    # (rad; negative leans forward) and returns to the walking target linearly over this time
    # (s). Without it the walker spends its first second stepping in place.
    ("start", 2),
    # The trailing leg: the observation forgets an obstacle once the pelvis is past its far
    # edge, but the foot behind still has to cross it. While the swing heel is behind the
    # remembered obstacle's far edge plus this margin (m), the swing thigh target and the
    # whole swing's knee target move by these gains (rad per m of that obstacle's top height).
    ("trail", 3),
    # Waiting for a high foot: the legs swap at the longest step time even with the swing
    # foot still in the air, which over a tall obstacle hands the body to a foot well above
    # the ground. While the swing foot's clearance is above this height (m), the longest step
    # time is extended by this much (s).
    ("hold", 2),  # extra time (s), clearance (m)
)
N_PARAMS = sum(n for _, n in PARAM_LAYOUT)
# Values of the groups added after files were written, which change nothing: no start lean,
# no trailing-leg lift, no waiting for a high foot. A file that predates them (28 values: none;
# 30: no "trail"; 33: no "hold") walks exactly as it always did with these appended.
NO_START = np.array([0.0, 1.0])
NO_TRAIL = np.array([0.0, 0.0, 0.0])
NO_HOLD = np.array([0.0, 1.0])
LATER_GROUPS = (NO_START, NO_TRAIL, NO_HOLD)
MIN_START_S = 1e-3  # a shorter start phase is none (keeps the division finite)

# Memory layout, in order: the stance leg (0 right, 1 left), time in stance (s), time
# since reset (s); the obstacle the observation showed last step and the one before it, each
# as (ground x of its centre, height of its top, radius) in m.
MEMORY_LAYOUT = (
    "stance_left", "t_stance", "t_episode",
    "seen_x", "seen_top", "seen_r",
    "passed_x", "passed_top", "passed_r",
)  # fmt: skip
MEMORY_SIZE = len(MEMORY_LAYOUT)
MEMORY_SEEN = slice(MEMORY_LAYOUT.index("seen_x"), MEMORY_LAYOUT.index("seen_r") + 1)
MEMORY_PASSED = slice(MEMORY_LAYOUT.index("passed_x"), MEMORY_LAYOUT.index("passed_r") + 1)
# Where the memory puts "no obstacle": far behind the start, so no foot is ever behind it.
NO_OBSTACLE_X_M = -100.0
# Obstacle centres closer than this (m) are one obstacle: pelvis x + (x - pelvis x) need not
# give back x to the last bit, and the observation may be float32.
SAME_OBSTACLE_TOL_M = 1e-4

# A hand-set starting point: textbook walking angles, moderate gains, SIMBICON's feedback.
INITIAL_PARAMS = np.array(
    [
        0.35, 0.3, 0.2,  # swing thigh 20 deg forward, balance feedback
        3.0, 0.3,  # swing hip kp, kd
        -0.1, 3.0, 0.3,  # trunk: lean 6 deg forward
        -1.0, -0.1, 0.2,  # swing knee: fold, then extend after 0.2 s
        -0.1,  # stance knee slightly bent
        2.0, 0.2, 4.0, 0.3,  # knee gains
        0.2, 0.0,  # ankle: dorsiflexed in swing, neutral in stance
        2.0, 0.2,  # ankle gains
        0.5, 0.2,  # push-off
        0.2, 0.6,  # step time bounds
        0.02,  # base excitation
        0.5, 1.0, 2.0,  # obstacle look-ahead and lift gains
        0.0, 1.0,  # no start lean
        0.1, 1.0, 2.0,  # trailing leg: 10 cm margin, the same lift gains as the leading one
        0.0, 1.0,  # no waiting for a high foot
    ]
)  # fmt: skip


def complete_params(params: Any, xp: Any = np) -> Any:
    """`params` with the neutral values of the groups added since (`LATER_GROUPS`) appended,
    if they predate them (28, 30 or 33 values); other lengths are returned as they are."""
    params = np.asarray(params, dtype=float) if xp is np else params
    for k in range(len(LATER_GROUPS), 0, -1):
        missing = LATER_GROUPS[-k:]
        if params.shape == (N_PARAMS - sum(g.size for g in missing),):
            tail = np.concatenate(missing)
            return xp.concatenate([params, xp.asarray(tail, dtype=params.dtype)])
    return params


def unpack(params: Any, xp: Any = np) -> dict[str, Any]:
    """Split a flat parameter vector into its named groups (see `PARAM_LAYOUT`)."""
    return split_params(complete_params(params, xp), PARAM_LAYOUT, KIND, xp)


def initial_memory(xp: Any = np) -> Any:
    """The controller's memory at reset (`MEMORY_LAYOUT`): right leg in stance, clocks at 0,
    no obstacle seen or passed."""
    memory = np.zeros(MEMORY_SIZE)
    for name in ("seen_x", "passed_x"):
        memory[MEMORY_LAYOUT.index(name)] = NO_OBSTACLE_X_M
    return xp.asarray(memory)


def foot_clearance(obs: Any, leg: int, xp: Any = np) -> Any:
    """Height (m) of the lower of a foot's heel and toes above where they sit when flat."""
    talus = obs[OBS_TALUS_Y[leg]] - TALUS_Y_FLAT_M
    toes = obs[OBS_TOES_Y[leg]] - TOES_Y_FLAT_M
    return xp.minimum(talus, toes)


def control(params: Any, memory: Any, obs: Any, xp: Any = np) -> tuple[Any, Any]:
    """One control step: (new memory, excitations (18,) in [0, 1]) for observation (41,).

    Branch-free (`xp.where` only), so it jits and vmaps with `xp=jax.numpy`.
    """
    p = unpack(params, xp)
    obs = np.asarray(obs, dtype=float) if xp is np else obs
    stance_left, t, t_episode = memory[0], memory[1], memory[2]
    seen, passed = memory[MEMORY_SEEN], memory[MEMORY_PASSED]  # (x, top, r) of each
    q, u = obs[OBS_JOINT_ANGLES], obs[OBS_JOINT_SPEEDS]
    tilt, tilt_speed = obs[OBS_PELVIS_TILT], obs[OBS_PELVIS_TILT_SPEED]

    def per_leg(values: tuple[Any, Any]) -> tuple[Any, Any]:
        """(stance value, swing value) from a (right, left) pair, by the current stance leg."""
        right, left = values
        return xp.where(stance_left > 0.5, left, right), xp.where(stance_left > 0.5, right, left)

    def leg_obs(index: tuple[int, int]) -> tuple[Any, Any]:
        return per_leg((obs[index[0]], obs[index[1]]))

    hip_st, hip_sw = per_leg((q[0], q[3]))
    knee_st, knee_sw = per_leg((q[1], q[4]))
    ankle_st, ankle_sw = per_leg((q[2], q[5]))
    hip_speed_st, hip_speed_sw = per_leg((u[0], u[3]))
    knee_speed_st, knee_speed_sw = per_leg((u[1], u[4]))
    ankle_speed_st, ankle_speed_sw = per_leg((u[2], u[5]))
    stance_ankle_x, swing_heel_x = leg_obs(OBS_TALUS_X)
    _, swing_clearance = per_leg((foot_clearance(obs, 0, xp), foot_clearance(obs, 1, xp)))

    # An obstacle close ahead lifts the swing foot in proportion to how high its top is.
    obstacle_top = obs[OBS_OBSTACLE_Y] + obs[OBS_OBSTACLE_R]
    lift = xp.where(obs[OBS_OBSTACLE_DX] < p["obstacle"][0], xp.maximum(obstacle_top, 0.0), 0.0)
    # The observation moves on to the next obstacle once the pelvis is past one's far edge, or
    # to none, which it reports 100 m ahead: either way the shown x jumps forward, and the one
    # shown before is "passed" (memory update below). A swing heel still behind a passed
    # obstacle's far edge has yet to cross it.
    obstacle_x = obs[OBS_PELVIS_X] + obs[OBS_OBSTACLE_DX]
    shown = obs[OBS_OBSTACLE_R] > 0.0
    moved_on = obstacle_x > seen[0] + SAME_OBSTACLE_TOL_M
    passed = xp.where(moved_on, seen, passed)
    behind = swing_heel_x < passed[0] + passed[2] + p["trail"][0]
    trail_lift = xp.where(behind, xp.maximum(passed[1], 0.0), 0.0)

    # Swing hip: place the foot by the balance feedback (ground-frame thigh angle).
    thigh_target = (
        p["swing_hip"][0]
        + p["swing_hip"][1] * (obs[OBS_COM_X] - stance_ankle_x)
        + p["swing_hip"][2] * obs[OBS_COM_VX]
        + p["obstacle"][1] * lift
        + p["trail"][1] * trail_lift
    )
    kp_hip, kd_hip = p["hip_gain"][0], p["hip_gain"][1]
    tau_hip_sw = kp_hip * (thigh_target - (tilt + hip_sw)) - kd_hip * (tilt_speed + hip_speed_sw)
    # Stance hip: the trunk's wanted torque, less what the swing hip already puts on the pelvis.
    start_left = xp.maximum(0.0, 1.0 - t_episode / xp.maximum(p["start"][1], MIN_START_S))
    pitch_target = p["torso"][0] + p["start"][0] * start_left
    tau_trunk = p["torso"][1] * (pitch_target - tilt) - p["torso"][2] * tilt_speed
    tau_hip_st = -tau_trunk - tau_hip_sw

    knee_fold = p["swing_knee"][0] - p["obstacle"][2] * lift
    knee_target_sw = xp.where(t < p["swing_knee"][2], knee_fold, p["swing_knee"][1])
    knee_target_sw = knee_target_sw - p["trail"][2] * trail_lift
    knee_target_sw = xp.minimum(knee_target_sw, 0.0)  # the knee cannot hyper-extend far
    kg = p["knee_gain"]
    tau_knee_sw = kg[0] * (knee_target_sw - knee_sw) - kg[1] * knee_speed_sw
    knee_target_st = xp.minimum(p["stance_knee"][0], 0.0)
    tau_knee_st = kg[2] * (knee_target_st - knee_st) - kg[3] * knee_speed_st

    kp_ankle, kd_ankle = p["ankle_gain"][0], p["ankle_gain"][1]
    tau_ankle_sw = kp_ankle * (p["ankle"][0] - ankle_sw) - kd_ankle * ankle_speed_sw
    push = xp.where(t > p["push"][1], p["push"][0], 0.0)
    tau_ankle_st = kp_ankle * (p["ankle"][1] - ankle_st) - kd_ankle * ankle_speed_st - push

    stance_tau = xp.stack([tau_hip_st, tau_knee_st, tau_ankle_st])
    swing_tau = xp.stack([tau_hip_sw, tau_knee_sw, tau_ankle_sw])
    right_tau = xp.where(stance_left > 0.5, swing_tau, stance_tau)
    left_tau = xp.where(stance_left > 0.5, stance_tau, swing_tau)

    signs = xp.asarray(MUSCLE_JOINT_SIGN)
    legs = []
    for leg, tau in ((0, right_tau), (1, left_tau)):
        drive = xp.maximum(signs @ tau, 0.0)  # > 0: the muscle helps the wanted torques
        # A weakened psoas needs more excitation for the same hip-flexion torque.
        psoas = xp.maximum(obs[OBS_PSOAS[leg]], MIN_PSOAS_STRENGTH)
        boost = xp.where(xp.arange(N_LEG_MUSCLES) == PSOAS_MUSCLE, 1.0 / psoas, 1.0)
        legs.append(p["base"][0] + drive * boost)
    action = xp.clip(xp.concatenate(legs), 0.0, 1.0)

    # The legs swap when the swing foot lands after the shortest step time, or at the longest
    # (later while the swing foot is still high).
    t_next = t + CONTROL_STEP_S
    landed = (swing_clearance < CONTACT_CLEARANCE_M) & (t_next > p["timing"][0])
    wait = xp.where(swing_clearance > p["hold"][1], xp.maximum(p["hold"][0], 0.0), 0.0)
    swap = landed | (t_next > p["timing"][1] + wait)
    new_memory = xp.stack(
        [
            xp.where(swap, 1.0 - stance_left, stance_left),
            xp.where(swap, 0.0, t_next),
            t_episode + CONTROL_STEP_S,
        ]
    )
    seen = xp.where(shown, xp.stack([obstacle_x, obstacle_top, obs[OBS_OBSTACLE_R]]), seen)
    new_memory = xp.concatenate([new_memory, seen, passed])
    return new_memory, action


@dataclass
class WalkerPolicy:
    """Stateful policy: keeps the stance leg and time in stance between steps.

    Subclasses for controllers built on the walker (`l2run.train.cruiser`) swap the class-level
    kind, parameter check, memory and control law."""

    params: np.ndarray
    meta: dict = field(default_factory=dict)
    _memory: np.ndarray = field(init=False)

    kind: ClassVar[str] = KIND
    _control = staticmethod(control)
    _initial_memory = staticmethod(initial_memory)

    @staticmethod
    def _complete(params: np.ndarray) -> np.ndarray:
        params = complete_params(params)
        unpack(params)  # a clear error now for a vector of the wrong length
        return params

    def __post_init__(self) -> None:
        self.params = self._complete(self.params)
        self._memory = self._initial_memory()

    def reset(self) -> None:
        self._memory = self._initial_memory()

    @property
    def memory(self) -> np.ndarray:
        """A copy of the memory the next `act` starts from (`MEMORY_LAYOUT`)."""
        return self._memory.copy()

    @memory.setter
    def memory(self, value: np.ndarray) -> None:
        """Continue from `value` (a policy stepping the controller by its own `control` call)."""
        value = np.asarray(value, dtype=float)
        if value.shape != self._memory.shape:
            raise ValueError(f"memory must have shape {self._memory.shape}, got {value.shape}")
        self._memory = value.copy()

    def act(self, obs: np.ndarray, params: np.ndarray | None = None) -> np.ndarray:
        """Excitations (18,) for `obs`; `params`: other parameters for this step only (a
        modulating policy's), else the policy's own."""
        obs = np.asarray(obs, dtype=float)
        if obs.shape != (41,):
            raise ValueError(f"observation must have shape (41,), got {obs.shape}")
        params = self.params if params is None else self._complete(params)
        self._memory, action = self._control(params, self._memory, obs)
        return action

    def save(self, path: str | Path) -> None:
        """Write the parameters and metadata as JSON (with the class's kind)."""
        write_policy_file(path, self.kind, self.params, self.meta)

    @classmethod
    def load(cls, path: str | Path) -> WalkerPolicy:
        return cls(*read_policy_file(path, cls.kind))
