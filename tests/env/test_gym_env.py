"""`l2run/Run-v0` through gymnasium: check_env, terminated vs truncated, seeding, options."""

from __future__ import annotations

import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from stub_engine import StandingStubEngine

import l2run  # noqa: F401  (registers the id)


def test_import_l2run_loads_neither_opensim_nor_jax() -> None:
    code = "import sys, l2run; print('opensim' in sys.modules, 'jax' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_check_env() -> None:
    env = gym.make("l2run/Run-v0")
    with pytest.warns(UserWarning):  # infinite observation bounds: gymnasium only warns
        check_env(env.unwrapped, skip_render_check=True)
    env.close()


def test_seed_and_difficulty_options() -> None:
    env = gym.make("l2run/Run-v0", max_obstacles=10)
    obs, info = env.reset(seed=4, options={"difficulty": 1})
    assert obs.shape == (41,) and obs.dtype == np.float64
    assert info["course"].obstacles.shape == (10, 3) and info["course"].psoas == (1.0, 1.0)
    from l2run.env.runenv import RunEnv

    seed_env = RunEnv(max_obstacles=10)
    assert np.array_equal(np.asarray(seed_env.reset(difficulty=1, seed=4)), obs)
    _, info = env.reset(seed=4)  # default difficulty 2: psoas drawn
    assert info["course"].psoas != (1.0, 1.0)
    with pytest.raises(ValueError, match="difficulty"):
        env.reset(options={"difficulty": 7})
    with pytest.raises(ValueError, match="unknown reset options"):
        env.reset(options={"dificulty": 1})
    # A refused reset changes nothing, not even gymnasium's own generator.
    state = env.unwrapped.np_random.bit_generator.state
    for bad in ({"seed": 2**40}, {"seed": 5, "options": {"foo": 1}}):
        with pytest.raises(ValueError):
            env.reset(**bad)
        assert env.unwrapped.np_random.bit_generator.state == state
    obs, *_ = env.step(env.action_space.sample())
    assert obs.shape == (41,)
    env.close()


def test_terminated_on_a_fall() -> None:
    env = gym.make("l2run/Run-v0")
    env.reset(seed=0, options={"difficulty": 0})
    for _ in range(1000):
        obs, reward, terminated, truncated, info = env.step(np.zeros(18, dtype=np.float32))
        if terminated or truncated:
            break
    assert terminated and not truncated and obs[2] < 0.65
    env.close()


def test_truncated_at_1000_steps(monkeypatch) -> None:
    import l2run.env.runenv as runenv

    monkeypatch.setattr(runenv, "make_engine", lambda name, **kw: StandingStubEngine())
    env = gym.make("l2run/Run-v0", engine="stub-for-test")
    env.reset(seed=0)
    flags = [env.step(np.zeros(18, dtype=np.float32))[2:4] for _ in range(1000)]
    assert flags[-1] == (False, True)
    assert not any(t or u for t, u in flags[:-1])


def test_render_modes() -> None:
    env = gym.make("l2run/Run-v0", render_mode="rgb_array")
    env.reset(seed=1)
    frame = env.render()
    assert frame.ndim == 3 and frame.shape[2] == 3 and frame.dtype == np.uint8
    env.close()
    with pytest.raises(ValueError, match="render_mode"):
        gym.make("l2run/Run-v0", render_mode="ascii")
