"""Names and orders shared by every area (the 2017 gait9dof18musc model).

Kept free of heavy imports: the environment, the JAX engine, the grader and the viewer all
index arrays with these tuples.
"""

from __future__ import annotations

# Generalised coordinates in the observation / state order (rad or m). `lumbar_extension`
# exists in the model but is locked, so it is not part of q.
COORDINATES: tuple[str, ...] = (
    "pelvis_tilt",
    "pelvis_tx",
    "pelvis_ty",
    "hip_flexion_r",
    "knee_angle_r",
    "ankle_angle_r",
    "hip_flexion_l",
    "knee_angle_l",
    "ankle_angle_l",
)

# The locked coordinate (back joint), held at its default value.
LOCKED_COORDINATES: tuple[str, ...] = ("lumbar_extension",)

_LEG_MUSCLES: tuple[str, ...] = (
    "hamstrings",
    "bifemsh",
    "glut_max",
    "iliopsoas",
    "rect_fem",
    "vasti",
    "gastroc",
    "soleus",
    "tib_ant",
)

# Action order (= force-set order of the muscles): right leg, then left leg.
MUSCLES: tuple[str, ...] = tuple(f"{m}_r" for m in _LEG_MUSCLES) + tuple(
    f"{m}_l" for m in _LEG_MUSCLES
)

# CoordinateLimitForce names, in force-set order (torques in N·m).
LIGAMENTS: tuple[str, ...] = (
    "HipLimit_r",
    "HipLimit_l",
    "KneeLimit_r",
    "KneeLimit_l",
    "AnkleLimit_r",
    "AnkleLimit_l",
)

# Bodies whose (x, y) appear in the observation, in observation order.
OBS_BODIES: tuple[str, ...] = ("head", "pelvis", "torso", "toes_l", "toes_r", "talus_l", "talus_r")

# Every body of the model's BodySet in order (ground excluded).
BODIES: tuple[str, ...] = (
    "pelvis",
    "femur_r",
    "tibia_r",
    "talus_r",
    "calcn_r",
    "toes_r",
    "femur_l",
    "tibia_l",
    "talus_l",
    "calcn_l",
    "toes_l",
    "torso",
    "head",
)

# Hunt–Crossley foot contact forces, in force-set order.
FOOT_CONTACTS: tuple[str, ...] = ("foot_r", "foot_l")
