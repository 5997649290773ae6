"""The contact-driven walking controller: bounds, symmetry, leg swaps, psoas, obstacles (ahead
and passed), file round trip."""

from __future__ import annotations

import numpy as np
import pytest

from l2run.train.walker import (
    CONTACT_CLEARANCE_M,
    INITIAL_PARAMS,
    MEMORY_PASSED,
    MEMORY_SEEN,
    MEMORY_SIZE,
    N_PARAMS,
    OBS_COM_X,
    OBS_OBSTACLE_DX,
    OBS_OBSTACLE_R,
    OBS_OBSTACLE_Y,
    OBS_PELVIS_X,
    OBS_PSOAS,
    OBS_TALUS_X,
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


def _memory(stance_left: float, t_stance: float, t_episode: float) -> np.ndarray:
    """A memory at reset with the stance leg and clocks set (no obstacle seen or passed)."""
    memory = initial_memory()
    memory[:3] = (stance_left, t_stance, t_episode)
    return memory


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
        memory = _memory(rng.integers(2), rng.uniform(0, 1), rng.uniform(0, 10))
        new_memory, a = control(params, memory, rng.normal(size=41) * 3)
        assert a.shape == (18,) and np.all((a >= 0) & (a <= 1))
        assert new_memory.shape == (MEMORY_SIZE,) and new_memory[0] in (0.0, 1.0)
        assert new_memory[2] == pytest.approx(memory[2] + 0.01)  # the episode clock


def test_mirrored_state_with_the_other_stance_leg_gets_the_mirrored_action():
    rng = np.random.default_rng(1)
    params = INITIAL_PARAMS + rng.normal(scale=0.1, size=N_PARAMS)
    for _ in range(20):
        obs, t = _obs(rng), rng.uniform(0, 0.15)
        t_episode = rng.uniform(0, 2)  # in and after the start phase
        _, a = control(params, _memory(0.0, t, t_episode), obs)
        _, b = control(params, _memory(1.0, t, t_episode), mirror_observation(obs))
        np.testing.assert_allclose(b, mirror_action(a), atol=1e-12)


def test_legs_swap_when_the_swing_foot_lands_after_the_shortest_step():
    p = unpack(INITIAL_PARAMS)
    t_min, t_max = p["timing"]
    obs = _obs(np.random.default_rng(2))
    down = _lift_feet(obs, 0.0, 0.5 * CONTACT_CLEARANCE_M)  # stance right, left foot touches
    up = _lift_feet(obs, 0.0, 0.1)  # left foot well up in the air
    # too early: the landing does not count yet
    memory, _ = control(INITIAL_PARAMS, _memory(0.0, 0.0, 0.0), down)
    np.testing.assert_allclose(memory[:3], [0.0, 0.01, 0.01])
    # after the shortest step time: the left leg becomes the stance leg, its clock restarts
    memory, _ = control(INITIAL_PARAMS, _memory(0.0, t_min + 0.05, 3.0), down)
    np.testing.assert_allclose(memory[:3], [1.0, 0.0, 3.01])
    # foot in the air: no swap until the longest step time
    memory, _ = control(INITIAL_PARAMS, _memory(0.0, t_min + 0.05, 3.0), up)
    assert memory[0] == 0.0
    memory, _ = control(INITIAL_PARAMS, _memory(0.0, t_max, 3.0), up)
    np.testing.assert_allclose(memory[:3], [1.0, 0.0, 3.01])


def test_a_high_swing_foot_delays_the_swap_at_the_longest_step_time():
    """With a hold of 0.1 s above 0.2 m: past the longest step time the legs still swap for a
    foot below 0.2 m, wait for one above it, and swap anyway 0.1 s later."""
    params = INITIAL_PARAMS.copy()
    t_max = unpack(params)["timing"][1]
    params[_group_start("hold") : _group_start("hold") + 2] = (0.1, 0.2)
    obs = _obs(np.random.default_rng(3))
    low, high = _lift_feet(obs, 0.0, 0.1), _lift_feet(obs, 0.0, 0.3)  # stance right
    memory, _ = control(params, _memory(0.0, t_max, 3.0), low)
    np.testing.assert_allclose(memory[:3], [1.0, 0.0, 3.01])
    memory, _ = control(params, _memory(0.0, t_max, 3.0), high)
    np.testing.assert_allclose(memory[:3], [0.0, t_max + 0.01, 3.01])
    memory, _ = control(params, _memory(0.0, t_max + 0.1, 3.0), high)
    np.testing.assert_allclose(memory[:3], [1.0, 0.0, 3.01])
    # the neutral hold (no extra time) swaps the high foot at the longest step time
    memory, _ = control(INITIAL_PARAMS, _memory(0.0, t_max, 3.0), high)
    assert memory[0] == 1.0


def test_weak_psoas_is_excited_harder():
    obs = _lift_feet(np.zeros(41), 0.0, 0.1)
    obs[list(OBS_PSOAS)] = 1.0
    obs[9] = unpack(INITIAL_PARAMS)["swing_hip"][0] - 0.1  # left (swing) thigh short of target
    _, strong = control(INITIAL_PARAMS, _memory(0.0, 0.1, 3.0), obs)
    assert 0.1 < strong[PSOAS_L] < 0.5  # the swing hip flexes, unsaturated
    weak_obs = obs.copy()
    weak_obs[OBS_PSOAS[1]] = 0.5
    _, weak = control(INITIAL_PARAMS, _memory(0.0, 0.1, 3.0), weak_obs)
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
        [_memory(rng.integers(2), rng.uniform(0, 0.7), rng.uniform(0, 2)) for _ in range(8)]
    )
    memory[::2, 3:] = (1.0, 0.1, 0.08, 0.6, 0.15, 0.12)  # obstacles seen and passed
    obs = np.stack([_lift_feet(_obs(rng), *rng.uniform(0, 0.04, size=2)) for _ in range(8)])
    got_m, got_a = fn(xs, memory, obs)
    for i in range(8):
        want_m, want_a = control(xs[i], memory[i], obs[i])
        np.testing.assert_allclose(np.asarray(got_a[i]), want_a, atol=1e-12)
        np.testing.assert_allclose(np.asarray(got_m[i]), want_m, atol=1e-12)


def test_an_obstacle_close_ahead_lifts_the_swing_foot_and_a_far_one_does_not():
    obs = _lift_feet(np.zeros(41), 0.0, 0.1)
    obs[list(OBS_PSOAS)] = 1.0
    obs[9] = unpack(INITIAL_PARAMS)["swing_hip"][0] - 0.1  # swing hip flexing, unsaturated
    obs[[OBS_OBSTACLE_DX, OBS_OBSTACLE_Y, OBS_OBSTACLE_R]] = (100.0, 0.0, 0.0)  # none ahead
    memory = _memory(0.0, 0.05, 3.0)  # right stance, early swing, start phase over
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
    params[_group_start("start") : _group_start("start") + 2] = (lean, duration)
    obs = _lift_feet(_obs(np.random.default_rng(6)), 0.0, 0.1)

    def stance_hip_muscles(p: np.ndarray, t_episode: float) -> np.ndarray:
        return control(p, _memory(0.0, 0.1, t_episode), obs)[1][:4]

    no_lean = stance_hip_muscles(INITIAL_PARAMS, 0.0)
    assert not np.allclose(stance_hip_muscles(params, 0.0), no_lean)
    np.testing.assert_allclose(stance_hip_muscles(params, duration + 0.5), no_lean)
    # the same torques as a walker whose own pitch target is moved by half the lean
    half = INITIAL_PARAMS.copy()
    half[_group_start("torso")] += lean / 2  # the trunk's pitch target
    np.testing.assert_allclose(
        stance_hip_muscles(params, duration / 2), stance_hip_muscles(half, 9.0)
    )


LATER = ("start", "trail", "hold")


@pytest.mark.parametrize("later_groups", [LATER[k:] for k in range(len(LATER))])
def test_files_from_before_later_groups_load_and_walk_as_before(later_groups):
    """A 28-value file (before the start phase), a 30-value one (before the trailing-leg
    lift) or a 33-value one (before the hold) gets the neutral values of the groups it lacks
    appended: same excitations and swaps, also with an obstacle passed, the swing heel behind
    it and the swing foot high at the longest step time."""
    from l2run.train.walker import LATER_GROUPS

    neutral = dict(zip(LATER, LATER_GROUPS, strict=True))
    n_old = N_PARAMS - sum(neutral[g].size for g in later_groups)
    old = INITIAL_PARAMS[:n_old] + 0.01
    policy = WalkerPolicy(old.copy())
    assert policy.params.shape == (N_PARAMS,)
    np.testing.assert_array_equal(
        policy.params[n_old:], np.concatenate([neutral[g] for g in later_groups])
    )
    t_max = unpack(policy.params)["timing"][1]
    for lift_m, t_stance in ((0.05, 0.1), (0.5, t_max)):  # the second swaps with the foot high
        obs = _lift_feet(_obs(np.random.default_rng(7)), 0.0, lift_m)
        obs[[OBS_OBSTACLE_DX, OBS_OBSTACLE_Y, OBS_OBSTACLE_R]] = (100.0, 0.0, 0.0)  # none ahead
        for t_episode in (0.0, 0.5, 5.0):
            memory = _memory(0.0, t_stance, t_episode)
            # a 0.2 m high obstacle passed at x = 1 m, the left (swing) heel still behind it
            memory[MEMORY_SEEN] = memory[MEMORY_PASSED] = (1.0, 0.2, 0.1)
            obs[OBS_TALUS_X[1]] = 0.9
            old_memory, old_action = control(old, memory, obs)
            new_memory, new_action = control(policy.params, memory, obs)
            np.testing.assert_array_equal(old_action, new_action)
            np.testing.assert_array_equal(old_memory, new_memory)
            assert new_memory[0] == (1.0 if t_stance == t_max else 0.0)
    for bad in (n_old - 1, N_PARAMS + 1):
        with pytest.raises(ValueError, match="shape"):
            WalkerPolicy(np.zeros(bad))


def _show_obstacle(obs: np.ndarray, pelvis_x: float, row: tuple[float, float, float] | None):
    """Set the pelvis x and the observed next obstacle (ground x, y, r), or none ahead."""
    obs = obs.copy()
    obs[OBS_PELVIS_X] = pelvis_x
    if row is None:
        obs[[OBS_OBSTACLE_DX, OBS_OBSTACLE_Y, OBS_OBSTACLE_R]] = (100.0, 0.0, 0.0)
    else:
        obs[[OBS_OBSTACLE_DX, OBS_OBSTACLE_Y, OBS_OBSTACLE_R]] = (row[0] - pelvis_x, *row[1:])
    return obs


def test_memory_keeps_the_obstacle_the_pelvis_has_passed():
    """The observation drops an obstacle once the pelvis is past its far edge; the memory
    holds it as "passed" (ground x, top height, radius) until the next one is passed, and
    keeps the last one when none is ahead."""
    a, b = (1.5, 0.02, 0.1), (3.0, -0.01, 0.2)
    obs = _lift_feet(_obs(np.random.default_rng(8)), 0.0, 0.05)
    seen, passed = MEMORY_SEEN, MEMORY_PASSED
    memory = initial_memory()
    none = initial_memory()[passed]
    # pelvis x grows along the course; the float sums x - pelvis x + pelvis x wobble
    for pelvis_x, row, want_seen, want_passed in [
        (0.0, a, a, none),
        (0.7, a, a, none),
        (1.55, a, a, none),
        (1.65, b, b, a),
        (2.0, b, b, a),
        (3.3, None, b, b),
        (4.0, None, b, b),
    ]:
        memory, _ = control(INITIAL_PARAMS, memory, _show_obstacle(obs, pelvis_x, row))
        top = lambda r: (r[0], r[1] + r[2], r[2])  # noqa: E731
        np.testing.assert_allclose(memory[seen], top(want_seen), atol=1e-12)
        want = want_passed if want_passed is none else top(want_passed)
        np.testing.assert_allclose(memory[passed], want, atol=1e-12)


def test_a_passed_obstacle_lifts_the_swing_leg_until_its_heel_is_past_it():
    """Swing heel behind the passed obstacle's far edge (plus the margin): the swing hip
    flexes harder and the knee folds more than with the heel beyond it; zero trail gains, or
    the stance leg behind it, change nothing."""
    params = INITIAL_PARAMS.copy()
    margin, thigh_gain, knee_gain = unpack(params)["trail"]
    assert thigh_gain > 0 and knee_gain > 0
    obs = _lift_feet(np.zeros(41), 0.0, 0.1)
    obs[list(OBS_PSOAS)] = 1.0
    obs[9] = unpack(params)["swing_hip"][0] - 0.1  # swing hip flexing, unsaturated
    obs = _show_obstacle(obs, 2.0, None)
    obs[OBS_COM_X] = 2.0  # above the stance heel: no balance feedback on the thigh target
    memory = _memory(0.0, 0.2, 3.0)  # right stance, late swing: only the trail lift folds
    x, top, r = 1.5, 0.25, 0.2
    memory[MEMORY_SEEN] = memory[MEMORY_PASSED] = (x, top, r)

    def act(p: np.ndarray, left_heel_x: float, right_heel_x: float = 2.0) -> np.ndarray:
        o = obs.copy()
        o[OBS_TALUS_X[1]], o[OBS_TALUS_X[0]] = left_heel_x, right_heel_x
        return control(p, memory, o)[1]

    behind, past = act(params, x + r + 0.5 * margin), act(params, x + r + 2 * margin)
    assert behind[PSOAS_L] > past[PSOAS_L]  # the swing hip flexes harder
    bifemsh_l = 9 + 1  # a pure knee flexor: the knee folds more
    assert behind[bifemsh_l] > past[bifemsh_l]
    no_trail = params.copy()
    no_trail[_group_start("trail") : _group_start("trail") + 3] = 0.0
    np.testing.assert_array_equal(act(no_trail, x), act(no_trail, x + 1.0))
    # the stance (right) heel behind the obstacle is not lifted
    np.testing.assert_array_equal(act(params, 3.0, x), act(no_trail, 3.0, x))
