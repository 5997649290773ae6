"""The walker with a second gait for the clear stretch after the last obstacle.

At difficulty 2 every obstacle lies in the first 5 m (`l2run.course`), which the walker
(`l2run.train.walker`) covers in about 3.5 s; the rest of the 10 s is flat ground. One
parameter set has to do both, so a search for speed trades it against falls over obstacles
(docs/training/STAGES.md, stage 16). The cruiser keeps the walker's parameters while any
obstacle is ahead or under a foot, and once the course is clear blends its gait parameters
towards a second set, the "cruise" values, tuned for speed on flat ground only:

    p = walker + w (cruise - walker),   w = clip((t_clear - delay) / ramp, 0, 1)

where t_clear is how long (s) the course has been clear. With the cruise values equal to the
walker's, the cruiser is the walker exactly. The course is clear when the observation shows no
obstacle ahead and both heels are past the last obstacle's far edge by `CLEAR_MARGIN_M`; on a
course without obstacles it is clear from the start (the delay then holds the walker's start).

The start from standing gets the same treatment: a third set, the "launch" values, is in force
at reset and fades linearly into the walker's over `launch_time` s,

    p += w_l (launch - walker),   w_l = clip(1 - t / launch_time, 0, 1)

(t: time since reset), so a search can tune how the runner gets going without touching how it
crosses obstacles.

Everything comes from the observation and the walker's memory, so it runs unchanged in the
OpenSim and JAX engines and is branch-free under `xp=jax.numpy`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from l2run.train import walker
from l2run.train.controller_params import group_offsets, split_params
from l2run.train.gait import CONTROL_STEP_S

KIND = "cruiser"

# The walker's gait groups the cruise set replaces. The obstacle, start, trailing-leg and hold
# groups have nothing to do on clear ground.
CRUISE_GROUPS = (
    "swing_hip", "hip_gain", "torso", "swing_knee", "stance_knee", "knee_gain",
    "ankle", "ankle_gain", "push", "timing", "base",
)  # fmt: skip
CRUISE_PREFIX = "cruise_"
LAUNCH_PREFIX = "launch_"
_WALKER_SIZES = dict(walker.PARAM_LAYOUT)
PARAM_LAYOUT: tuple[tuple[str, int], ...] = (
    *walker.PARAM_LAYOUT,
    *((CRUISE_PREFIX + name, _WALKER_SIZES[name]) for name in CRUISE_GROUPS),
    # Delay after the course becomes clear before the blend starts, and the blend's duration (s).
    ("cruise_ramp", 2),
    *((LAUNCH_PREFIX + name, _WALKER_SIZES[name]) for name in CRUISE_GROUPS),
    ("launch_time", 1),  # how long (s) the launch values take to fade into the walker's
)
N_PARAMS = sum(n for _, n in PARAM_LAYOUT)
N_CRUISE = sum(_WALKER_SIZES[name] for name in CRUISE_GROUPS)  # values per gait set
_OFFSETS = group_offsets(PARAM_LAYOUT)
CRUISE_START = _OFFSETS[CRUISE_PREFIX + CRUISE_GROUPS[0]]  # each set's values are contiguous
LAUNCH_START = _OFFSETS[LAUNCH_PREFIX + CRUISE_GROUPS[0]]
MIN_RAMP_S = 1e-3  # a shorter blend is a switch (keeps the division finite)
NO_LAUNCH_TIME_S = 1.0  # any launch time: `from_walker`'s launch values are the walker's


def _cruise_selector() -> np.ndarray:
    """(N_CRUISE, walker.N_PARAMS) one-hot: cruise value k replaces this walker parameter."""
    offsets = group_offsets(walker.PARAM_LAYOUT)
    rows = [offsets[name] + k for name in CRUISE_GROUPS for k in range(_WALKER_SIZES[name])]
    selector = np.zeros((N_CRUISE, walker.N_PARAMS))
    selector[np.arange(N_CRUISE), rows] = 1.0
    return selector


CRUISE_SELECTOR = _cruise_selector()
# Heels this far (m) past the last obstacle's far edge: that obstacle can no longer trip them.
CLEAR_MARGIN_M = 0.1
# Memory: the walker's (`walker.MEMORY_LAYOUT`), then the time the course has been clear (s).
MEMORY_SIZE = walker.MEMORY_SIZE + 1
T_CLEAR = walker.MEMORY_SIZE
T_EPISODE = walker.MEMORY_LAYOUT.index("t_episode")


def from_walker(walker_params: np.ndarray, delay_s: float = 0.0, ramp_s: float = 1.0) -> np.ndarray:
    """A cruiser that is exactly `walker_params` (its cruise and launch values are the
    walker's)."""
    walker_params = walker.complete_params(walker_params)
    own = CRUISE_SELECTOR @ walker_params
    return np.concatenate([walker_params, own, [delay_s, ramp_s], own, [NO_LAUNCH_TIME_S]])


INITIAL_PARAMS = from_walker(walker.INITIAL_PARAMS)


def complete_params(params: np.ndarray) -> np.ndarray:
    """`params` with the neutral values of walker groups added since (`walker.LATER_GROUPS`)
    inserted after its walker part, if that part predates them; other lengths as they are."""
    params = np.asarray(params, dtype=float)
    n_walker = walker.N_PARAMS - (N_PARAMS - params.size)  # the file's walker part
    if 0 < n_walker < walker.N_PARAMS:
        own = walker.complete_params(params[:n_walker])
        if own.size == walker.N_PARAMS:  # a length some walker file had
            return np.concatenate([own, params[n_walker:]])
    return params


def unpack(params: Any, xp: Any = np) -> dict:
    """Split a flat parameter vector into its named groups (see `PARAM_LAYOUT`)."""
    return split_params(params, PARAM_LAYOUT, KIND, xp)


def initial_memory(xp: Any = np) -> Any:
    """The walker's memory at reset, and a clock (s) of the course being clear at 0."""
    return xp.concatenate([walker.initial_memory(xp), xp.zeros(1)])


def blend(params: Any, t_clear: Any, t_episode: Any = 1e9, xp: Any = np) -> Any:
    """The walker parameters (walker.N_PARAMS,) in force `t_episode` s after reset with the
    course clear for `t_clear` s."""
    params = np.asarray(params, dtype=float) if xp is np else params
    p = unpack(params, xp)  # a clear error for a wrong length
    own = params[: walker.N_PARAMS]
    cruise = params[CRUISE_START : CRUISE_START + N_CRUISE]
    launch = params[LAUNCH_START : LAUNCH_START + N_CRUISE]
    delay, ramp = p["cruise_ramp"][0], p["cruise_ramp"][1]
    w_cruise = xp.clip((t_clear - delay) / xp.maximum(ramp, MIN_RAMP_S), 0.0, 1.0)
    w_launch = xp.clip(1.0 - t_episode / xp.maximum(p["launch_time"][0], MIN_RAMP_S), 0.0, 1.0)
    selector = xp.asarray(CRUISE_SELECTOR, dtype=own.dtype)
    gait = selector @ own
    return own + (w_cruise * (cruise - gait) + w_launch * (launch - gait)) @ selector


def control(
    params: Any, memory: Any, obs: Any, xp: Any = np, offset: Any = None
) -> tuple[Any, Any]:
    """One control step: (new memory (MEMORY_SIZE,), excitations (18,) in [0, 1]).

    `offset` (walker.N_PARAMS,), if given, is added to the blended walker parameters for this
    step (a planner's change of plan, `l2run.train.planner`)."""
    obs = np.asarray(obs, dtype=float) if xp is np else obs
    t_clear, t_episode = memory[T_CLEAR], memory[T_EPISODE]
    gait = blend(params, t_clear, t_episode, xp)
    if offset is not None:
        gait = gait + offset
    walker_memory, action = walker.control(gait, memory[: walker.MEMORY_SIZE], obs, xp)
    passed = walker_memory[walker.MEMORY_PASSED]  # (x, top, r) of the last obstacle passed
    heels_x = xp.minimum(obs[walker.OBS_TALUS_X[0]], obs[walker.OBS_TALUS_X[1]])
    none_ahead = obs[walker.OBS_OBSTACLE_R] <= 0.0
    clear = none_ahead & (heels_x > passed[0] + passed[2] + CLEAR_MARGIN_M)
    t_clear = xp.where(clear, t_clear + CONTROL_STEP_S, 0.0)
    return xp.concatenate([walker_memory, xp.reshape(t_clear, (1,))]), action


@dataclass
class CruiserPolicy(walker.WalkerPolicy):
    """Stateful policy: the walker's memory plus the clear-course clock."""

    kind: ClassVar[str] = KIND

    @staticmethod
    def _complete(params: np.ndarray) -> np.ndarray:
        params = complete_params(params)
        unpack(params)  # a clear error now for a vector of the wrong length
        return params

    _initial_memory = staticmethod(initial_memory)
    _control = staticmethod(control)
