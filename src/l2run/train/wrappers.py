"""The 2017 winners' tricks as optional gymnasium wrappers around `l2run/Run-v0`.

Each wrapper does one thing, keeps gymnasium's checker happy, and can be stacked:

- `ActionRepeat(env, k)`: hold each action for k steps (0.01 s each): fewer decisions, and
  temporal-difference targets that look further ahead.
- `PelvisRelative(env)`: x positions made relative to the pelvis, so the state does not drift
  as the runner advances.
- `ObstacleMemory(env, n)`: remember the last n obstacles passed (the seed shows only the next).
- `MirrorAugment(env, p)`: per episode, with probability p, show the left/right mirrored runner
  (`mirror_transition` does the same for replay-buffer augmentation).
- `ShapedReward(env, ...)`: training-only reward terms; the raw reward stays in `info`.
- `FixedDifficulty(env, d)`: pass `options={"difficulty": d}` on every reset (SB3 passes none).

These follow the tricks the 2017 top teams described in the competition's write-ups.

Observation layout (41 values, ground frame, m, rad, s): 0 pelvis tilt, 1 pelvis x, 2 pelvis y,
3-5 pelvis speeds, 6-11 hip/knee/ankle angles right then left, 12-17 their speeds, 18-19 COM x,y,
20-21 COM vx,vy, 22-35 x,y of head, pelvis, torso, toes_l, toes_r, talus_l, talus_r,
36-37 psoas strength left, right, 38-40 next obstacle (x relative to pelvis, y, radius).

Reward shaping is *off at evaluation*: `l2run evaluate` and `l2run test` never add
`ShapedReward`, and every reported reward/distance is the environment's own.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np

OBS_SIZE = 41
N_MUSCLES_PER_LEG = 9
PELVIS_X, PELVIS_Y = 1, 2
PELVIS_VX = 4
COM_X = 18
BODY_XY = slice(22, 36)
OBSTACLE = slice(38, 41)
NO_OBSTACLE_REL_X = 100.0  # the seed's "no obstacle ahead" marker (x distance, m)

# Absolute x positions (m) that `PelvisRelative` re-expresses relative to the pelvis.
ABSOLUTE_X_INDICES = np.array([PELVIS_X, COM_X, *range(22, 36, 2)])

# Left/right swap of the observation: pairs of indices exchanged by `mirror_observation`.
MIRROR_PAIRS: tuple[tuple[int, int], ...] = (
    (6, 9), (7, 10), (8, 11),  # hip/knee/ankle angles r <-> l
    (12, 15), (13, 16), (14, 17),  # their speeds
    (28, 30), (29, 31),  # toes_l x,y <-> toes_r x,y
    (32, 34), (33, 35),  # talus_l x,y <-> talus_r x,y
    (36, 37),  # psoas strength left <-> right
)  # fmt: skip


def relative_to_pelvis(obs, xp=np):
    """`obs` (..., 41+) with every absolute x position (`ABSOLUTE_X_INDICES`) minus pelvis x.

    Pure and array-generic (``xp=numpy`` or ``jax.numpy``, same dtype out as in): the transform
    of `PelvisRelative`, also applied inside the JAX PPO rollout and by its evaluation policy.
    """
    obs = xp.asarray(obs)
    is_x = np.zeros(obs.shape[-1], dtype=bool)
    is_x[ABSOLUTE_X_INDICES] = True
    return xp.where(is_x, obs - obs[..., PELVIS_X : PELVIS_X + 1], obs)


def shaping_terms(
    obs,
    terminated,
    w_speed: float,
    speed_cap: float,
    w_alive: float,
    w_low: float,
    low_height: float,
    dt: float,
    xp=np,
) -> dict:
    """`ShapedReward`'s added terms {"speed", "alive", "low"} for the observation after a step.

    speed = w_speed * min(pelvis vx, speed_cap) * dt; alive = w_alive * dt unless the step
    ended the episode by a fall (`terminated`); low = -w_low * max(0, low_height - pelvis y)
    (m/s, m, s). Pure and array-generic (``xp=numpy`` or ``jax.numpy``; obs (..., 41+),
    terminated (...)), shared by the wrapper and the JAX PPO rollout.
    """
    return {
        "speed": w_speed * xp.minimum(obs[..., PELVIS_VX], speed_cap) * dt,
        "alive": xp.where(terminated, 0.0, w_alive * dt),
        "low": -w_low * xp.maximum(0.0, low_height - obs[..., PELVIS_Y]),
    }


def mirror_observation(obs: np.ndarray) -> np.ndarray:
    """The observation of the left/right mirrored runner (planar model: swap the legs).

    Works on (..., 41) arrays; values not tied to a side (pelvis, COM, head, torso,
    obstacle) are unchanged. Applying it twice gives the original back.
    """
    obs = np.asarray(obs)
    if obs.shape[-1] < OBS_SIZE:
        raise ValueError(f"expected observations with >= {OBS_SIZE} values, got {obs.shape}")
    out = obs.copy()
    for a, b in MIRROR_PAIRS:
        out[..., a], out[..., b] = obs[..., b], obs[..., a]
    return out


def mirror_action(action: np.ndarray) -> np.ndarray:
    """Swap the right leg's 9 excitations with the left leg's 9 (the seed's muscle order)."""
    action = np.asarray(action)
    if action.shape[-1] != 2 * N_MUSCLES_PER_LEG:
        raise ValueError(f"expected 18 excitations, got shape {action.shape}")
    return np.concatenate(
        [action[..., N_MUSCLES_PER_LEG:], action[..., :N_MUSCLES_PER_LEG]], axis=-1
    )


def mirror_transition(obs, action, reward, next_obs, done):
    """Mirror one transition for replay-buffer augmentation (reward and done are symmetric)."""
    return (
        mirror_observation(obs),
        mirror_action(action),
        reward,
        mirror_observation(next_obs),
        done,
    )


class FixedDifficulty(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """Reset at a fixed difficulty (0, 1 or 2) unless the caller passes its own options."""

    def __init__(self, env: gym.Env, difficulty: int):
        if difficulty not in (0, 1, 2):
            raise ValueError(f"difficulty must be 0, 1 or 2, got {difficulty!r}")
        gym.utils.RecordConstructorArgs.__init__(self, difficulty=difficulty)
        gym.Wrapper.__init__(self, env)
        self.difficulty = difficulty

    def reset(self, *, seed=None, options=None):
        options = {"difficulty": self.difficulty, **(options or {})}
        return self.env.reset(seed=seed, options=options)


class ActionRepeat(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """Apply each action for `repeat` environment steps; rewards are summed.

    Stops early when the episode ends. `info["env_steps"]` counts the steps taken.
    """

    def __init__(self, env: gym.Env, repeat: int = 4):
        if repeat < 1:
            raise ValueError(f"repeat must be >= 1, got {repeat}")
        gym.utils.RecordConstructorArgs.__init__(self, repeat=repeat)
        gym.Wrapper.__init__(self, env)
        self.repeat = int(repeat)

    def step(self, action):
        total, i = 0.0, 0
        for i in range(self.repeat):  # noqa: B007  (i counts the steps taken)
            obs, reward, terminated, truncated, info = self.env.step(action)
            total += float(reward)
            if terminated or truncated:
                break
        info = {**info, "env_steps": i + 1}
        return obs, total, terminated, truncated, info


class PelvisRelative(gym.ObservationWrapper, gym.utils.RecordConstructorArgs):
    """Express every absolute x position (COM, bodies, the pelvis itself) relative to the pelvis.

    The pelvis x slot becomes 0 (kept, so the layout and mirror map stay the same); heights stay
    absolute because the fall rule (pelvis y < 0.65 m) depends on them.
    """

    def __init__(self, env: gym.Env):
        gym.utils.RecordConstructorArgs.__init__(self)
        gym.ObservationWrapper.__init__(self, env)
        self.observation_space = gym.spaces.Box(
            -np.inf, np.inf, shape=env.observation_space.shape, dtype=env.observation_space.dtype
        )

    def observation(self, obs):
        out = relative_to_pelvis(np.asarray(obs, dtype=np.float64))
        return out.astype(self.observation_space.dtype)


class ObstacleMemory(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """Append the last `n` obstacles already passed (x relative to the pelvis, y, r).

    The seed shows only the next obstacle, so once the pelvis passes one the feet may still
    hit it unseen; the 2017 winners kept a memory of them. Unused slots are (0, 0, 0)
    (radius 0 = nothing there).
    """

    def __init__(self, env: gym.Env, n: int = 2):
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        gym.utils.RecordConstructorArgs.__init__(self, n=n)
        gym.Wrapper.__init__(self, env)
        self.n = int(n)
        low = np.concatenate([env.observation_space.low, np.full(3 * n, -np.inf)])
        high = np.concatenate([env.observation_space.high, np.full(3 * n, np.inf)])
        self.observation_space = gym.spaces.Box(low, high, dtype=env.observation_space.dtype)
        self._seen: list[tuple[float, float, float]] = []  # absolute (x, y, r), ground frame

    def _remember(self, obs) -> None:
        rel_x, y, r = (float(v) for v in obs[OBSTACLE])
        if rel_x >= NO_OBSTACLE_REL_X or r <= 0.0:
            return
        x = rel_x + float(obs[PELVIS_X])
        if not any(abs(x - sx) < 1e-6 and abs(r - sr) < 1e-9 for sx, _, sr in self._seen):
            self._seen.append((x, y, r))

    def _augment(self, obs) -> np.ndarray:
        pelvis_x = float(obs[PELVIS_X])
        rel_x = float(obs[OBSTACLE][0])
        if rel_x >= NO_OBSTACLE_REL_X:
            passed = list(self._seen)
        else:  # everything seen before the obstacle now shown as "next"
            passed = [o for o in self._seen if o[0] < rel_x + pelvis_x - 1e-9]
        memory = np.zeros((self.n, 3))
        for k, (x, y, r) in enumerate(reversed(passed[-self.n :])):
            memory[k] = (x - pelvis_x, y, r)
        out = np.concatenate([np.asarray(obs, dtype=np.float64), memory.ravel()])
        return out.astype(self.observation_space.dtype)

    def reset(self, *, seed=None, options=None):
        obs, info = self.env.reset(seed=seed, options=options)
        self._seen = []
        self._remember(obs)
        return self._augment(obs), info

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        self._remember(obs)
        return self._augment(obs), reward, terminated, truncated, info


class MirrorAugment(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """With probability `p` per episode, present the left/right mirrored runner.

    The policy sees mirrored observations and its actions are mirrored back before they reach
    the environment; since the planar model is symmetric this is the same task, seen from the
    other side, so the policy learns both legs' roles from every gait. Use on the raw 41-value
    observation (put it innermost, below `ObstacleMemory`).
    """

    def __init__(self, env: gym.Env, p: float = 0.5):
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"p must be in [0, 1], got {p}")
        gym.utils.RecordConstructorArgs.__init__(self, p=p)
        gym.Wrapper.__init__(self, env)
        self.p = float(p)
        self.mirrored = False

    def reset(self, *, seed=None, options=None):
        obs, info = self.env.reset(seed=seed, options=options)
        self.mirrored = bool(self.np_random.random() < self.p)
        info = {**info, "mirrored": self.mirrored}
        return self._obs(obs), info

    def _obs(self, obs):
        return mirror_observation(obs).astype(obs.dtype) if self.mirrored else obs

    def step(self, action):
        a = mirror_action(action) if self.mirrored else action
        obs, reward, terminated, truncated, info = self.env.step(a)
        return self._obs(obs), reward, terminated, truncated, {**info, "mirrored": self.mirrored}


class ShapedReward(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """Training-only reward terms added to the environment's reward (never used to evaluate).

    reward = raw + w_speed * min(pelvis vx, v_cap) * dt_env + w_alive * dt_env
             - w_low * max(0, y_min - pelvis y)
    (pelvis vx in m/s, heights in m). The raw reward is kept in `info["raw_reward"]` and each term
    in `info["reward_terms"]`, so logs can report the seed's reward.
    """

    def __init__(
        self,
        env: gym.Env,
        w_speed: float = 0.5,
        speed_cap: float = 4.0,
        w_alive: float = 0.5,
        w_low: float = 1.0,
        low_height: float = 0.75,
        dt: float = 0.01,
        enabled: bool = True,
    ):
        gym.utils.RecordConstructorArgs.__init__(
            self,
            w_speed=w_speed,
            speed_cap=speed_cap,
            w_alive=w_alive,
            w_low=w_low,
            low_height=low_height,
            dt=dt,
            enabled=enabled,
        )
        gym.Wrapper.__init__(self, env)
        self.w_speed, self.speed_cap = w_speed, speed_cap
        self.w_alive, self.w_low, self.low_height = w_alive, w_low, low_height
        self.dt = dt
        self.enabled = enabled

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        added = shaping_terms(
            np.asarray(obs, dtype=np.float64),
            bool(terminated),
            self.w_speed,
            self.speed_cap,
            self.w_alive,
            self.w_low,
            self.low_height,
            self.dt,
        )
        terms = {"raw": float(reward), **{k: float(v) for k, v in added.items()}}
        shaped = sum(terms.values()) if self.enabled else float(reward)
        info = {**info, "raw_reward": float(reward), "reward_terms": terms}
        return obs, shaped, terminated, truncated, info


WRAPPERS = {
    "action_repeat": ActionRepeat,
    "pelvis_relative": PelvisRelative,
    "obstacle_memory": ObstacleMemory,
    "mirror": MirrorAugment,
    "shaped_reward": ShapedReward,
}
# Order in which `apply_wrappers` stacks them (innermost first): mirroring works on the raw
# 41 values, shaping reads raw values, the memory needs the absolute pelvis x (so it sits below
# `PelvisRelative`), repetition outermost so every repeated step is shaped.
WRAPPER_ORDER = ("mirror", "shaped_reward", "obstacle_memory", "pelvis_relative", "action_repeat")


def apply_wrappers(env: gym.Env, spec: dict[str, dict] | None, evaluation: bool = False) -> gym.Env:
    """Stack the wrappers named in `spec` ({name: kwargs}) in `WRAPPER_ORDER`.

    With `evaluation=True` the training-only ones (reward shaping, mirror augmentation) are
    left out, so reported rewards are the environment's own.
    """
    spec = dict(spec or {})
    unknown = set(spec) - set(WRAPPERS)
    if unknown:
        raise ValueError(f"unknown wrappers {sorted(unknown)}; known: {sorted(WRAPPERS)}")
    for name in WRAPPER_ORDER:
        if name not in spec:
            continue
        if evaluation and name in ("shaped_reward", "mirror"):
            continue
        env = WRAPPERS[name](env, **(spec[name] or {}))
    return env
