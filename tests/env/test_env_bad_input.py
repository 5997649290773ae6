"""Bad input is a clear ValueError and leaves the environment usable; integrator failures end
the episode cleanly; the 1000-step limit."""

from __future__ import annotations

import numpy as np
import pytest

from l2run.engines.base import IntegratorError
from l2run.env.runenv import RunEnv, check_action

BAD_ACTIONS = [
    (np.full(18, np.nan), "NaN"),
    (np.r_[np.zeros(17), np.inf], "NaN or inf"),
    (np.r_[np.zeros(17), -np.inf], "NaN or inf"),
    (np.r_[np.full(8, 0.5), np.nan, np.full(9, 0.5)], "NaN or inf"),  # one NaN among good ones
    (np.r_[np.full(8, 2.0), np.nan, np.full(9, -1.0)], "NaN or inf"),  # ... and out of range
    (np.zeros(17), r"shape \(18,\)"),
    (np.zeros(19), r"shape \(18,\)"),
    (np.zeros((18, 1)), r"shape \(18,\)"),
    (np.zeros((2, 18)), r"shape \(18,\)"),
    ("abc", "real numbers"),
    ([None] * 18, "real numbers"),
    (["0.5"] * 18, "real numbers"),  # numpy would parse the strings
    ([True] * 18, "real numbers"),
    (np.full(18, 0.5 + 1j), "real numbers"),  # numpy would drop the imaginary part
]


def test_bad_actions_change_nothing(osim_env: RunEnv) -> None:
    """After every rejected action, the next good step equals that of an untouched run."""
    good = np.linspace(0, 1, 18)
    osim_env.reset(difficulty=2, seed=9)
    expected = [osim_env.step(good)[0] for _ in range(3)]
    osim_env.reset(difficulty=2, seed=9)
    for k in range(3):
        for action, message in BAD_ACTIONS:
            with pytest.raises(ValueError, match=message):
                osim_env.step(action)
        obs = osim_env.step(good)[0]
        assert obs == expected[k]
    assert osim_env.istep == 3


def test_out_of_range_actions_are_clipped(osim_env: RunEnv) -> None:
    osim_env.reset(difficulty=0, seed=0)
    a = osim_env.step(np.r_[np.full(9, 2.0), np.full(9, -3.0)])[0]
    osim_env.reset(difficulty=0, seed=0)
    b = osim_env.step(np.r_[np.ones(9), np.zeros(9)])[0]
    assert a == b


@pytest.mark.parametrize("difficulty", [3, -1, 1.5, "2", None])
def test_bad_difficulty(osim_env: RunEnv, difficulty: object) -> None:
    with pytest.raises(ValueError, match="difficulty must be one of"):
        osim_env.reset(difficulty=difficulty)  # type: ignore[arg-type]
    assert len(osim_env.reset(difficulty=1, seed=2)) == 41


@pytest.mark.parametrize("seed", [-1, 2**32, 1.5, "1"])
def test_bad_seed(osim_env: RunEnv, seed: object) -> None:
    with pytest.raises(ValueError, match="seed must be"):
        osim_env.reset(difficulty=1, seed=seed)  # type: ignore[arg-type]


def test_bad_constructor_arguments() -> None:
    with pytest.raises(ValueError, match="max_obstacles"):
        RunEnv(max_obstacles=-1)
    with pytest.raises(ValueError, match="engine must be one of"):
        RunEnv(engine="mujoco")
    with pytest.raises(ValueError, match="integrator must be one of"):
        RunEnv(integrator="leapfrog")
    with pytest.raises(ValueError, match="accuracy"):
        RunEnv(accuracy=0.0)


def test_step_before_reset_is_explained(stub_env: RunEnv) -> None:
    with pytest.raises(RuntimeError, match="reset"):
        stub_env.step(np.zeros(18))


def test_done_at_1000_steps(stub_env: RunEnv) -> None:
    stub_env.reset(difficulty=0)
    dones = [stub_env.step(np.zeros(18))[2] for _ in range(1000)]
    assert not any(dones[:-1]) and dones[-1]
    assert stub_env.istep == 1000


def test_integrator_failure_ends_the_episode(stub_env: RunEnv) -> None:
    stub_env.reset(difficulty=0)
    stub_env.engine.fail_at = 3
    for _ in range(3):
        assert not stub_env.step(np.zeros(18))[2]
    before = stub_env.current_state
    obs, reward, done, info = stub_env.step(np.zeros(18))
    assert done and reward == -500.0 and "integrator failure" in info["error"]
    assert obs == before
    with pytest.raises(RuntimeError, match="reset"):
        stub_env.step(np.zeros(18))
    stub_env.engine.fail_at = None
    stub_env.reset(difficulty=0)
    assert not stub_env.step(np.zeros(18))[2]


def test_opensim_integrator_failure_is_reported_and_reset_recovers(osim_env: RunEnv) -> None:
    """A state OpenSim cannot integrate (NaN speeds) -> IntegratorError -> done, −500."""
    import opensim

    osim_env.reset(difficulty=0, seed=0)
    engine = osim_env.engine
    broken = opensim.State(engine.state)
    y = broken.getY().to_numpy()
    y[:] = np.nan
    broken.setY(opensim.Vector.createFromMat(y))
    engine.state = broken
    with pytest.raises(IntegratorError):
        engine.step(np.zeros(18))
    obs, reward, done, info = osim_env.step(np.zeros(18))
    assert done and reward == -500.0 and "error" in info
    osim_env.reset(difficulty=0, seed=0)
    obs, reward, done, info = osim_env.step(np.zeros(18))
    assert not done and "error" not in info and abs(obs[2] - 0.91) < 0.01


def test_returned_observations_are_copies(stub_env: RunEnv) -> None:
    """Editing a returned observation in place (say, positions made relative to the pelvis)
    changes neither the env's state nor the rewards and done flags that follow."""

    def run(edit: bool) -> list[tuple[float, bool]]:
        obs = stub_env.reset(difficulty=0, seed=3)
        out = []
        for _ in range(5):
            if edit:
                obs[:] = [0.0] * len(obs)
            obs, reward, done, _ = stub_env.step(np.full(18, 0.3))
            out.append((reward, done))
        return out

    assert run(edit=True) == run(edit=False)
    assert stub_env.step(np.full(18, 0.3))[0] is not stub_env.current_state


@pytest.mark.parametrize("action", [np.full(18, 0.25), np.linspace(-1.0, 2.0, 18)])
def test_checked_action_is_a_float64_copy(action: np.ndarray) -> None:
    """In range or clipped, the checked action never shares the caller's memory (a caller that
    reuses its array must not change what a recording kept)."""
    checked = check_action(action)
    assert checked.dtype == np.float64 and not np.shares_memory(checked, action)
    np.testing.assert_array_equal(checked, np.clip(action, 0.0, 1.0))
