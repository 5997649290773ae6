"""The winners' tricks as wrappers: gymnasium's checker, mirror symmetry, memory, shaping."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import l2run  # noqa: F401  registers l2run/Run-v0
from l2run.train.wrappers import (
    MIRROR_PAIRS,
    ActionRepeat,
    FixedDifficulty,
    MirrorAugment,
    ObstacleMemory,
    PelvisRelative,
    ShapedReward,
    apply_wrappers,
    mirror_action,
    mirror_observation,
)

WRAPPED = {
    "action_repeat": lambda e: ActionRepeat(e, 3),
    "pelvis_relative": PelvisRelative,
    "obstacle_memory": lambda e: ObstacleMemory(e, 2),
    "mirror": lambda e: MirrorAugment(e, 1.0),
    "shaped_reward": ShapedReward,
    "fixed_difficulty": lambda e: FixedDifficulty(e, 1),
}


@pytest.fixture(scope="module")
def base_env():
    env = gym.make("l2run/Run-v0", engine="opensim").unwrapped
    yield env
    env.close()


@pytest.mark.parametrize("name", sorted(WRAPPED))
def test_wrapper_passes_check_env(base_env, name):
    env = WRAPPED[name](base_env)
    check_env(env, skip_render_check=True)


def test_all_wrappers_stacked_pass_check_env(base_env):
    spec = {
        "mirror": {"p": 0.5},
        "shaped_reward": {},
        "obstacle_memory": {"n": 2},
        "pelvis_relative": {},
        "action_repeat": {"repeat": 2},
    }
    env = apply_wrappers(FixedDifficulty(base_env, 2), spec)
    check_env(env, skip_render_check=True)
    assert env.observation_space.shape == (41 + 6,)


def _symmetric_observation(rng) -> np.ndarray:
    obs = rng.normal(size=41)
    for a, b in MIRROR_PAIRS:
        obs[b] = obs[a]
    return obs


def test_mirror_maps_symmetric_state_to_itself():
    rng = np.random.default_rng(0)
    obs = _symmetric_observation(rng)
    np.testing.assert_array_equal(mirror_observation(obs), obs)


def test_mirror_swaps_sides_of_asymmetric_state(base_env):
    # A real observation with the legs apart: after a few steps of right-leg-only excitation.
    obs, _ = base_env.reset(seed=3, options={"difficulty": 2})
    action = np.zeros(18)
    action[:9] = 1.0
    for _ in range(20):
        obs, *_ = base_env.step(action)
    m = mirror_observation(obs)
    from l2run.observation import OBSERVATION_NAMES

    index = {n: i for i, n in enumerate(OBSERVATION_NAMES)}
    sided = [n for n in OBSERVATION_NAMES if _partner(n) is not None]
    assert len(sided) == 2 * len(MIRROR_PAIRS)
    assert any(obs[index[n]] != obs[index[_partner(n)]] for n in sided), "state is symmetric"
    for name, i in index.items():
        partner = _partner(name)
        expected = obs[i] if partner is None else obs[index[partner]]
        assert m[i] == expected, name
    np.testing.assert_array_equal(mirror_observation(m), obs)


def _partner(name: str) -> str | None:
    """The other side's name (tokens r <-> l), or None for a name tied to no side."""
    if name.startswith("obstacle_"):  # obstacle_r is the radius
        return None
    tokens = name.split("_")
    swapped = [{"r": "l", "l": "r"}.get(t, t) for t in tokens]
    return "_".join(swapped) if swapped != tokens else None


def test_mirror_action_swaps_legs():
    a = np.arange(18.0)
    m = mirror_action(a)
    np.testing.assert_array_equal(m[:9], a[9:])
    np.testing.assert_array_equal(m[9:], a[:9])
    with pytest.raises(ValueError, match="18"):
        mirror_action(np.zeros(17))


def test_mirrored_episode_is_the_mirror_image(base_env):
    """The model is left/right symmetric: a mirrored run of mirrored actions mirrors the run."""
    rng = np.random.default_rng(1)
    actions = rng.uniform(0, 1, size=(15, 18))
    obs, _ = base_env.reset(seed=5, options={"difficulty": 0})
    for a in actions:
        obs, *_ = base_env.step(a)
    env = MirrorAugment(base_env, p=1.0)
    mobs, info = env.reset(seed=5, options={"difficulty": 0})
    assert info["mirrored"]
    for a in actions:
        mobs, *_ = env.step(mirror_action(a))
    # env shows the mirrored world and was driven by mirrored actions: the underlying run is the
    # run of `actions` itself, so what it shows is the mirror of `obs`.
    np.testing.assert_allclose(mobs, mirror_observation(obs), atol=1e-9)


def test_action_repeat_sums_rewards_of_repeated_steps(base_env):
    a = np.full(18, 0.3)
    base_env.reset(seed=2, options={"difficulty": 0})
    rewards = [base_env.step(a)[1] for _ in range(3)]
    obs_direct = base_env.step(a)[0]  # noqa: F841
    env = ActionRepeat(base_env, 3)
    env.reset(seed=2, options={"difficulty": 0})
    _, r, _, _, info = env.step(a)
    assert info["env_steps"] == 3
    assert r == pytest.approx(sum(rewards), abs=1e-12)


def test_pelvis_relative_removes_pelvis_x(base_env):
    env = PelvisRelative(base_env)
    obs, _ = env.reset(seed=2, options={"difficulty": 0})
    raw = base_env.run_env.engine.observation()
    assert obs[1] == 0.0
    assert obs[18] == pytest.approx(raw[18] - raw[1])  # COM x
    assert obs[2] == pytest.approx(raw[2])  # heights stay absolute


class _ScriptedEnv(gym.Env):
    """Observations from a list: pelvis x and next obstacle chosen by the test."""

    observation_space = gym.spaces.Box(-np.inf, np.inf, (41,), np.float64)
    action_space = gym.spaces.Box(0.0, 1.0, (18,), np.float32)

    def __init__(self, frames):
        self.frames, self.i = frames, 0

    def _obs(self):
        pelvis_x, obstacle = self.frames[self.i]
        o = np.zeros(41)
        o[1] = pelvis_x
        o[38:41] = obstacle
        return o

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.i = 0
        return self._obs(), {}

    def step(self, action):
        self.i += 1
        return self._obs(), 0.0, self.i == len(self.frames) - 1, False, {}


def test_obstacle_memory_remembers_passed_obstacles():
    frames = [
        (0.0, (2.0, 0.01, 0.1)),  # obstacle A at x=2
        (1.0, (1.0, 0.01, 0.1)),
        (2.5, (1.5, -0.02, 0.2)),  # passed A; obstacle B at x=4
        (4.5, (100.0, 0.0, 0.0)),  # passed B: nothing ahead
    ]
    env = ObstacleMemory(_ScriptedEnv(frames), n=2)
    obs, _ = env.reset()
    np.testing.assert_array_equal(obs[41:], np.zeros(6))
    obs, *_ = env.step(env.action_space.sample())
    np.testing.assert_array_equal(obs[41:], np.zeros(6))
    obs, *_ = env.step(env.action_space.sample())
    np.testing.assert_allclose(obs[41:44], (2.0 - 2.5, 0.01, 0.1))
    np.testing.assert_array_equal(obs[44:], np.zeros(3))
    obs, *_ = env.step(env.action_space.sample())
    np.testing.assert_allclose(obs[41:44], (4.0 - 4.5, -0.02, 0.2))  # most recent first
    np.testing.assert_allclose(obs[44:47], (2.0 - 4.5, 0.01, 0.1))


def test_shaping_is_training_only(base_env):
    env = ShapedReward(base_env)
    env.reset(seed=2, options={"difficulty": 0})
    _, shaped, _, _, info = env.step(np.full(18, 0.2))
    assert shaped == pytest.approx(sum(info["reward_terms"].values()))
    assert info["raw_reward"] == info["reward_terms"]["raw"]
    evaluation = apply_wrappers(base_env, {"shaped_reward": {}, "mirror": {}}, evaluation=True)
    assert evaluation is base_env


def test_bad_wrapper_arguments():
    with pytest.raises(ValueError, match="unknown wrappers"):
        apply_wrappers(_ScriptedEnv([(0, (100, 0, 0))] * 2), {"nope": {}})
    with pytest.raises(ValueError, match="repeat"):
        ActionRepeat(_ScriptedEnv([(0, (100, 0, 0))] * 2), 0)
    with pytest.raises(ValueError, match="difficulty"):
        FixedDifficulty(_ScriptedEnv([(0, (100, 0, 0))] * 2), 5)
