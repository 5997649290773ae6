"""RunEnv on OpenSim: observation, reward, done, reproducibility, course in the model."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from opensim_queries import IndependentModel, opensim_ligament_penalty, opensim_observation

from l2run.env.runenv import RunEnv
from l2run.observation import OBSERVATION_NAMES


def test_reset_is_the_default_state(osim_env: RunEnv) -> None:
    import opensim

    obs = osim_env.reset(difficulty=0, seed=0)
    assert isinstance(obs, list) and len(obs) == 41
    value = dict(zip(OBSERVATION_NAMES, obs, strict=True))
    assert value["pelvis_ty"] == pytest.approx(0.91)
    assert value["pelvis_tilt"] == pytest.approx(-0.05)
    assert value["pelvis_tx"] == 0.0
    assert all(value[n] == 0.0 for n in OBSERVATION_NAMES if n.endswith("_speed"))
    engine = osim_env.engine
    model = engine.model
    state = engine.state
    for i in range(model.getMuscles().getSize()):
        muscle = opensim.Thelen2003Muscle.safeDownCast(model.getMuscles().get(i))
        # Default activation and fiber length from the model's properties (no equilibration).
        assert muscle.getActivation(state) == pytest.approx(muscle.get_default_activation())
        assert muscle.getFiberLength(state) == pytest.approx(muscle.get_default_fiber_length())
    assert engine.time == 0.0


def test_observation_equals_opensim_on_a_fresh_state_every_step(osim_env: RunEnv) -> None:
    """Body positions, COM, speeds, psoas and obstacle vs OpenSim on an independent state,
    every step of a whole episode (random excitations, difficulty 2, until the fall)."""
    obs = osim_env.reset(difficulty=2, seed=11)
    rng = np.random.RandomState(0)
    engine = osim_env.engine
    twin = IndependentModel()
    done, steps = False, 0
    while not done:
        state = twin.state_of(engine)
        expected = opensim_observation(twin.model, state, osim_env.course)
        for name, got in zip(OBSERVATION_NAMES, obs, strict=True):
            assert got == pytest.approx(expected[name], rel=1e-12, abs=1e-12), (steps, name)
        last_x = expected["pelvis_tx"]
        obs, reward, done, info = osim_env.step(rng.uniform(0, 1, 18))
        steps += 1
        # Reward recomputed from OpenSim's ligament forces on a fresh state.
        after = twin.state_of(engine)
        x = twin.model.getCoordinateSet().get("pelvis_tx").getValue(after)
        assert reward == pytest.approx(
            x - last_x - opensim_ligament_penalty(twin.model, after), abs=1e-12
        )
        assert "error" not in info
    assert obs[2] < 0.65 and 10 < steps < 1000


def test_ligament_penalty_is_part_of_the_reward(osim_env: RunEnv) -> None:
    """Somewhere in a fall the ligaments engage, and the reward differs from Δx by the penalty."""
    osim_env.reset(difficulty=0, seed=1)
    penalties = []
    done = False
    while not done:
        _, reward, done, info = osim_env.step(np.ones(18))
        terms = info["reward_terms"]
        assert reward == pytest.approx(terms["forward"] + terms["ligament_penalty"])
        penalties.append(-terms["ligament_penalty"])
    assert max(penalties) > 1e-6


def test_done_on_a_fall_with_zero_excitations(osim_env: RunEnv) -> None:
    osim_env.reset(difficulty=0, seed=0)
    heights = []
    for _ in range(1000):
        obs, _, done, _ = osim_env.step(np.zeros(18))
        heights.append(obs[2])
        if done:
            break
    assert done and heights[-1] < 0.65 and min(heights[:-1]) >= 0.65
    assert osim_env.istep < 1000


def test_info_state(osim_env: RunEnv) -> None:
    osim_env.reset(difficulty=2, seed=3)
    _, _, _, info = osim_env.step(np.full(18, 0.3))
    state = info["state"]
    assert state["time"] == pytest.approx(0.01)
    assert len(state["body_poses"]) == 13 and all(len(v) == 3 for v in state["body_poses"].values())
    assert set(state["contact_forces"]) == {"foot_r", "foot_l"}
    # Standing at t = 0.01 s: the ground carries the body's weight (order of magnitude).
    total_fy = sum(f[1] for f in state["contact_forces"].values())
    assert 100 < total_fy < 5000
    assert state["activations"].shape == state["fiber_lengths"].shape == (18,)
    assert state["ligament_forces"].shape == (6,)


def test_same_seed_same_actions_same_observations() -> None:
    rng = np.random.RandomState(5)
    actions = rng.uniform(0, 1, (25, 18))
    runs = []
    for seed in (4, 4, 5):
        env = RunEnv()
        trace = [env.reset(difficulty=2, seed=seed)]
        trace += [env.step(a)[0] for a in actions]
        runs.append(np.array(trace))
        env.close()
    np.testing.assert_array_equal(runs[0], runs[1])
    assert not np.array_equal(runs[0][:, -5:], runs[2][:, -5:])  # other psoas / obstacle


def _obstacle_contacts(model) -> list[tuple[Any, Any]]:
    """(ContactSphere, HuntCrossleyForce) of every obstacle slot of the model."""
    import opensim

    geometries, forces = model.getContactGeometrySet(), model.getForceSet()
    pairs = []
    for i in range(forces.getSize()):
        hc = opensim.HuntCrossleyForce.safeDownCast(forces.get(i))
        if hc is None or hc.getName() in ("foot_r", "foot_l"):
            continue
        # The engine names each obstacle's force after its sphere ("obstacle_3_contact").
        name = hc.getName().removesuffix("_contact")
        pairs.append((opensim.ContactSphere.safeDownCast(geometries.get(name)), hc))
    return pairs


def _ground_spheres(model) -> list[tuple[float, float, float, float]]:
    """(x, y, radius, stiffness of its force) of each obstacle sphere within reach (y > -1 m)."""
    placed = []
    for sphere, hc in _obstacle_contacts(model):
        loc = sphere.get_location()
        if loc[1] > -1.0:
            placed.append((loc[0], loc[1], sphere.getRadius(), hc.getStiffness()))
    return sorted(placed)


def test_course_is_in_the_model(osim_env: RunEnv) -> None:
    """Obstacle spheres at (x, y) with radius r, stiffness 1e6/r; psoas scales iliopsoas only."""
    env = osim_env
    env.reset(difficulty=0, seed=0)
    model = env.engine.model
    base = {
        m: model.getMuscles().get(m).getMaxIsometricForce()
        for m in ("iliopsoas_l", "iliopsoas_r", "glut_max_l")
    }
    env.reset(difficulty=2, seed=8)
    course = env.course
    assert course.obstacles.shape == (3, 3)
    model = env.engine.model
    in_reach = np.array(_ground_spheres(model))
    np.testing.assert_allclose(in_reach[:, :3], course.obstacles)
    for sphere, hc in _obstacle_contacts(model):  # parked slots too
        assert hc.getStiffness() == pytest.approx(1e6 / sphere.getRadius())
        assert hc.getDissipation() == pytest.approx(1e-5)
        assert hc.getStaticFriction() == hc.getDynamicFriction() == hc.getViscousFriction() == 0
    left, right = course.psoas
    muscles = model.getMuscles()
    assert muscles.get("iliopsoas_l").getMaxIsometricForce() == pytest.approx(
        left * base["iliopsoas_l"]
    )
    assert muscles.get("iliopsoas_r").getMaxIsometricForce() == pytest.approx(
        right * base["iliopsoas_r"]
    )
    assert muscles.get("glut_max_l").getMaxIsometricForce() == pytest.approx(base["glut_max_l"])
    # Back to difficulty 0: full strength, no obstacle within reach.
    env.reset(difficulty=0)
    assert model.getMuscles().get("iliopsoas_l").getMaxIsometricForce() == pytest.approx(
        base["iliopsoas_l"]
    )


def test_obstacle_pushes_a_foot() -> None:
    """A large obstacle under the right foot lifts it compared with flat ground."""
    from l2run.course import Course
    from l2run.engines.opensim_engine import OpenSimEngine

    engine = OpenSimEngine()
    heights = []
    for obstacles in (np.zeros((0, 3)), np.array([[0.0, 0.0, 0.3]])):
        engine.reset(Course(obstacles=obstacles))
        for _ in range(5):
            engine.step(np.zeros(18))
        heights.append(engine.body_poses()["toes_r"][1])
    assert heights[1] > heights[0] + 0.01


def test_opensim_engine_refuses_non_finite_excitations(osim_env: RunEnv) -> None:
    """Called directly (RunEnv checks first), the engine names a NaN or ±inf excitation as a
    bad input instead of handing it to the integrator, and keeps its state."""
    osim_env.reset(difficulty=0)
    engine = osim_env.engine
    before = engine.observation()
    for bad in (np.nan, np.inf, -np.inf):
        action = np.full(18, 0.5)
        action[4] = bad
        with pytest.raises(ValueError, match="excitations must be finite"):
            engine.step(action)
        assert engine.time == 0.0
        np.testing.assert_array_equal(engine.observation(), before)
    engine.step(np.full(18, 0.5))
    assert engine.time == pytest.approx(0.01)


def test_osim_rl_15_obstacle_physics_builds_its_spheres_and_reports_the_drawn_ones() -> None:
    """osim-rl 1.5's obstacles: every sphere 0.1 m, stiffness 1e7, the unused slots at
    (0, -0.1); the observation reports the drawn radius."""
    from l2run.observation import next_obstacle

    env = RunEnv(obstacle_physics="osim-rl-1.5")
    obs = env.reset(difficulty=2, seed=8)
    drawn = env.course.obstacles
    expected = [(x, y, 0.1, 1e7) for x, y, _ in drawn]
    np.testing.assert_allclose(_ground_spheres(env.engine.model), expected)
    assert drawn[:, 2].max() != 0.1  # the drawn radii are not 1.5's physical one
    np.testing.assert_allclose(obs[38:41], next_obstacle(drawn, obs[1]))
    env.reset(difficulty=0)
    np.testing.assert_allclose(_ground_spheres(env.engine.model), [(0.0, -0.1, 0.1, 1e7)] * 3)
    assert env.get_observation()[38:41] == [100.0, 0.0, 0.0]  # nothing is reported ahead
    env.close()


def test_osim_rl_15_obstacle_touches_where_the_reported_one_does_not() -> None:
    """An obstacle reported at 5 cm in front of the toes: at its reported size it misses the
    toe spheres (a run equal to one without it), as 1.5's 0.1 m sphere it pushes them."""
    from l2run.course import Course, with_obstacle_physics
    from l2run.engines.opensim_engine import OpenSimEngine

    # toe spheres: centre (0.0399, 0.0110, ±0.0925) m at the default pose, radius 0.05; this
    # obstacle (z = 0) is 0.148 m from them: 2 mm into a 0.1 m sphere, 48 mm clear of a 0.05 m
    toe_x, toe_y, toe_z = 0.03994925, 0.01100917, 0.0925
    row = [toe_x + float(np.sqrt(0.148**2 - toe_z**2)), toe_y, 0.05]
    engine = OpenSimEngine()
    toes = []
    for course in (
        Course(),
        Course(obstacles=[row]),
        with_obstacle_physics(Course(obstacles=[row]), "osim-rl-1.5", 1),
    ):
        engine.reset(course)
        for _ in range(5):
            engine.step(np.zeros(18))
        toes.append(np.array(engine.body_poses()["toes_r"][:2]))
    np.testing.assert_allclose(toes[1], toes[0], atol=1e-12)
    assert toes[2][0] < toes[0][0] - 1e-4  # pushed back


def test_obstacle_physics_option_is_checked_before_an_engine_is_built(monkeypatch) -> None:
    import gymnasium as gym

    import l2run.env.runenv as runenv

    def must_not_build(name, **kwargs):
        raise AssertionError("an engine was built")

    monkeypatch.setattr(runenv, "make_engine", must_not_build)
    with pytest.raises(ValueError, match="OpenSim engine only"):
        runenv.RunEnv(engine="jax", obstacle_physics="osim-rl-1.5")
    with pytest.raises(ValueError, match="obstacle_physics must be one of"):
        runenv.RunEnv(obstacle_physics="2017")
    with pytest.raises(ValueError, match="max_obstacles <= 20"):
        runenv.RunEnv(obstacle_physics="osim-rl-1.5", max_obstacles=21)
    with pytest.raises(ValueError, match="OpenSim engine only"):
        gym.make_vec("l2run/Run-v0", num_envs=2, engine="jax", obstacle_physics="osim-rl-1.5")
