"""The contact-driven walking controller: bounds, symmetry, leg swaps, psoas, file round trip."""

from __future__ import annotations

import numpy as np
import pytest

from l2run.train.walker import (
    CONTACT_CLEARANCE_M,
    INITIAL_PARAMS,
    N_PARAMS,
    OBS_PSOAS,
    OBS_TALUS_Y,
    OBS_TOES_Y,
    TALUS_Y_FLAT_M,
    TOES_Y_FLAT_M,
    WalkerPolicy,
    control,
    initial_memory,
    unpack,
)
from l2run.train.wrappers import mirror_action, mirror_observation

PSOAS_R, PSOAS_L = 3, 9 + 3  # iliopsoas_r / iliopsoas_l in the action


def _obs(rng: np.random.Generator) -> np.ndarray:
    obs = rng.normal(scale=0.3, size=41)
    obs[list(OBS_PSOAS)] = 1.0
    return obs


def _lift_feet(obs: np.ndarray, right_m: float, left_m: float) -> np.ndarray:
    """Put each foot's heel and toes the given height above their flat-foot heights."""
    obs = obs.copy()
    for leg, h in ((0, right_m), (1, left_m)):
        obs[OBS_TALUS_Y[leg]] = TALUS_Y_FLAT_M + h
        obs[OBS_TOES_Y[leg]] = TOES_Y_FLAT_M + h
    return obs


def test_actions_are_18_values_in_unit_interval():
    rng = np.random.default_rng(0)
    for _ in range(50):
        params = INITIAL_PARAMS + rng.normal(scale=1.0, size=N_PARAMS)
        memory = np.array([rng.integers(2), rng.uniform(0, 1), rng.uniform(0, 10)], dtype=float)
        new_memory, a = control(params, memory, rng.normal(size=41) * 3)
        assert a.shape == (18,) and np.all((a >= 0) & (a <= 1))
        assert new_memory.shape == (3,) and new_memory[0] in (0.0, 1.0)
        assert new_memory[2] == pytest.approx(memory[2] + 0.01)  # the episode clock


def test_mirrored_state_with_the_other_stance_leg_gets_the_mirrored_action():
    rng = np.random.default_rng(1)
    params = INITIAL_PARAMS + rng.normal(scale=0.1, size=N_PARAMS)
    for _ in range(20):
        obs, t = _obs(rng), rng.uniform(0, 0.15)
        t_episode = rng.uniform(0, 2)  # in and after the start phase
        _, a = control(params, np.array([0.0, t, t_episode]), obs)
        _, b = control(params, np.array([1.0, t, t_episode]), mirror_observation(obs))
        np.testing.assert_allclose(b, mirror_action(a), atol=1e-12)


def test_legs_swap_when_the_swing_foot_lands_after_the_shortest_step():
    p = unpack(INITIAL_PARAMS)
    t_min, t_max = p["timing"]
    obs = _obs(np.random.default_rng(2))
    down = _lift_feet(obs, 0.0, 0.5 * CONTACT_CLEARANCE_M)  # stance right, left foot touches
    up = _lift_feet(obs, 0.0, 0.1)  # left foot well up in the air
    # too early: the landing does not count yet
    memory, _ = control(INITIAL_PARAMS, np.array([0.0, 0.0, 0.0]), down)
    np.testing.assert_allclose(memory, [0.0, 0.01, 0.01])
    # after the shortest step time: the left leg becomes the stance leg, its clock restarts
    memory, _ = control(INITIAL_PARAMS, np.array([0.0, t_min + 0.05, 3.0]), down)
    np.testing.assert_allclose(memory, [1.0, 0.0, 3.01])
    # foot in the air: no swap until the longest step time
    memory, _ = control(INITIAL_PARAMS, np.array([0.0, t_min + 0.05, 3.0]), up)
    assert memory[0] == 0.0
    memory, _ = control(INITIAL_PARAMS, np.array([0.0, t_max, 3.0]), up)
    np.testing.assert_allclose(memory, [1.0, 0.0, 3.01])


def test_weak_psoas_is_excited_harder():
    obs = _lift_feet(np.zeros(41), 0.0, 0.1)
    obs[list(OBS_PSOAS)] = 1.0
    obs[9] = unpack(INITIAL_PARAMS)["swing_hip"][0] - 0.1  # left (swing) thigh short of target
    _, strong = control(INITIAL_PARAMS, np.array([0.0, 0.1, 3.0]), obs)
    assert 0.1 < strong[PSOAS_L] < 0.5  # the swing hip flexes, unsaturated
    weak_obs = obs.copy()
    weak_obs[OBS_PSOAS[1]] = 0.5
    _, weak = control(INITIAL_PARAMS, np.array([0.0, 0.1, 3.0]), weak_obs)
    base = unpack(INITIAL_PARAMS)["base"][0]
    assert weak[PSOAS_L] == pytest.approx(base + 2 * (strong[PSOAS_L] - base))
    np.testing.assert_allclose(np.delete(weak, PSOAS_L), np.delete(strong, PSOAS_L))


def test_policy_round_trip_and_bad_input(tmp_path):
    policy = WalkerPolicy(INITIAL_PARAMS.copy(), {"note": "test"})
    rng = np.random.default_rng(4)
    observations = [_lift_feet(_obs(rng), 0.0, 0.0) for _ in range(40)]
    first = [policy.act(o) for o in observations]
    policy.reset()
    np.testing.assert_array_equal(initial_memory(), policy._memory)
    np.testing.assert_array_equal(first, [policy.act(o) for o in observations])
    path = tmp_path / "w.json"
    policy.save(path)
    loaded = WalkerPolicy.load(path)
    np.testing.assert_array_equal(loaded.params, policy.params)
    assert loaded.meta == {"note": "test"}
    with pytest.raises(ValueError, match="shape"):
        policy.act(np.zeros(40))
    with pytest.raises(ValueError, match="shape"):
        control(np.zeros(3), initial_memory(), np.zeros(41))
    from l2run.train.gait import INITIAL_PARAMS as GAIT_PARAMS
    from l2run.train.gait import GaitPolicy

    GaitPolicy(GAIT_PARAMS).save(tmp_path / "g.json")
    with pytest.raises(ValueError, match="not a walker"):
        WalkerPolicy.load(tmp_path / "g.json")


def test_evaluate_loads_walker_files_by_kind(tmp_path):
    from l2run.train.evaluate import load_policy

    WalkerPolicy(INITIAL_PARAMS.copy()).save(tmp_path / "w.json")
    adapter = load_policy(str(tmp_path / "w.json"))
    assert isinstance(adapter.policy, WalkerPolicy)


def test_jax_control_equals_numpy():
    jax = pytest.importorskip("jax")
    import jax.numpy as jnp

    import l2run.engines.jax.params  # noqa: F401  (enables float64 as the engine does)

    fn = jax.jit(jax.vmap(lambda x, m, o: control(x, m, o, xp=jnp)))
    rng = np.random.default_rng(5)
    xs = INITIAL_PARAMS + rng.normal(scale=0.3, size=(8, N_PARAMS))
    memory = np.stack(
        [rng.integers(2, size=8), rng.uniform(0, 0.7, size=8), rng.uniform(0, 2, size=8)], 1
    ).astype(float)
    obs = np.stack([_lift_feet(_obs(rng), *rng.uniform(0, 0.04, size=2)) for _ in range(8)])
    got_m, got_a = fn(xs, memory, obs)
    for i in range(8):
        want_m, want_a = control(xs[i], memory[i], obs[i])
        np.testing.assert_allclose(np.asarray(got_a[i]), want_a, atol=1e-12)
        np.testing.assert_allclose(np.asarray(got_m[i]), want_m, atol=1e-12)


def test_an_obstacle_close_ahead_lifts_the_swing_foot_and_a_far_one_does_not():
    from l2run.train.walker import OBS_OBSTACLE_DX, OBS_OBSTACLE_R, OBS_OBSTACLE_Y

    obs = _lift_feet(np.zeros(41), 0.0, 0.1)
    obs[list(OBS_PSOAS)] = 1.0
    obs[9] = unpack(INITIAL_PARAMS)["swing_hip"][0] - 0.1  # swing hip flexing, unsaturated
    obs[[OBS_OBSTACLE_DX, OBS_OBSTACLE_Y, OBS_OBSTACLE_R]] = (100.0, 0.0, 0.0)  # none ahead
    memory = np.array([0.0, 0.05, 3.0])  # right stance, early swing, start phase over
    _, clear = control(INITIAL_PARAMS, memory, obs)
    near, far = obs.copy(), obs.copy()
    near[[OBS_OBSTACLE_DX, OBS_OBSTACLE_Y, OBS_OBSTACLE_R]] = (0.3, 0.0, 0.1)
    far[[OBS_OBSTACLE_DX, OBS_OBSTACLE_Y, OBS_OBSTACLE_R]] = (2.0, 0.0, 0.1)
    _, with_near = control(INITIAL_PARAMS, memory, near)
    _, with_far = control(INITIAL_PARAMS, memory, far)
    np.testing.assert_array_equal(with_far, clear)
    assert with_near[PSOAS_L] > clear[PSOAS_L]  # the swing hip flexes harder
    # The stance hip answers the swing hip's reaction on the pelvis (gluteus maximus, index 2);
    # the stance leg's knee and ankle muscles do not change.
    assert with_near[2] > clear[2]
    knee_ankle_only = [1, 5, 6, 7, 8]
    np.testing.assert_array_equal(with_near[knee_ankle_only], clear[knee_ankle_only])


def _group_start(name: str) -> int:
    """Index of a parameter group's first value in the flat vector."""
    from l2run.train.walker import PARAM_LAYOUT

    names = [n for n, _ in PARAM_LAYOUT]
    return sum(size for _, size in PARAM_LAYOUT[: names.index(name)])


def test_start_phase_leans_the_trunk_target_and_fades_out():
    """At reset the trunk's pitch target is moved by the start lean; half-way through the start
    phase by half of it; afterwards not at all (the stance hip, which holds the trunk, shows
    it)."""
    params = INITIAL_PARAMS.copy()
    lean, duration = -0.3, 1.0
    params[-2:] = (lean, duration)
    obs = _lift_feet(_obs(np.random.default_rng(6)), 0.0, 0.1)

    def stance_hip_muscles(p: np.ndarray, t_episode: float) -> np.ndarray:
        return control(p, np.array([0.0, 0.1, t_episode]), obs)[1][:4]

    no_lean = stance_hip_muscles(INITIAL_PARAMS, 0.0)
    assert not np.allclose(stance_hip_muscles(params, 0.0), no_lean)
    np.testing.assert_allclose(stance_hip_muscles(params, duration + 0.5), no_lean)
    # the same torques as a walker whose own pitch target is moved by half the lean
    half = INITIAL_PARAMS.copy()
    half[_group_start("torso")] += lean / 2  # the trunk's pitch target
    np.testing.assert_allclose(
        stance_hip_muscles(params, duration / 2), stance_hip_muscles(half, 9.0)
    )


def test_files_from_before_the_start_phase_load_and_walk_as_before(tmp_path):
    """A 28-value file gets the start values that change nothing (no lean) appended."""
    from l2run.train.walker import LEGACY_N_PARAMS, NO_START

    legacy = INITIAL_PARAMS[:LEGACY_N_PARAMS] + 0.01
    policy = WalkerPolicy(legacy.copy())
    assert policy.params.shape == (N_PARAMS,)
    np.testing.assert_array_equal(policy.params[-2:], NO_START)
    obs = _lift_feet(_obs(np.random.default_rng(7)), 0.0, 0.0)
    for t_episode in (0.0, 0.5, 5.0):
        memory = np.array([0.0, 0.1, t_episode])
        np.testing.assert_array_equal(
            control(legacy, memory, obs)[1], control(policy.params, memory, obs)[1]
        )
    with pytest.raises(ValueError, match="shape"):
        WalkerPolicy(np.zeros(LEGACY_N_PARAMS - 1))
