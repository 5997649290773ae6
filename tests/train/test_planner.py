"""The planner: candidate plans, settings checks, its state estimate, its predictions, and that
it is the cruiser wherever it predicts no fall."""

from __future__ import annotations

import json

import numpy as np
import pytest

from l2run.train import cruiser, walker
from l2run.train.controller_params import group_offsets
from l2run.train.evaluate import pretrained_cruiser_path
from l2run.train.gait_search import load_controller_policy
from l2run.train.planner import (
    KIND,
    PlannerPolicy,
    PlannerSettings,
    candidate_plans,
    plan_predictor,
)

LOOK_HORIZON = 40  # control steps of the looks for speed in these tests (horizon: 25)


def test_candidate_plans_try_each_change_with_both_signs_and_every_hold():
    settings = PlannerSettings(changes=(("swing_hip", 0, 0.1), ("timing", 1, 0.05)), holds=(5, 9))
    offsets, holds = candidate_plans(settings)
    assert offsets.shape == (8, walker.N_PARAMS) and holds.tolist() == [5, 9] * 4
    at = group_offsets(walker.PARAM_LAYOUT)
    thigh, longest = at["swing_hip"], at["timing"] + 1
    np.testing.assert_array_equal(offsets[:4, thigh], [0.1, 0.1, -0.1, -0.1])
    np.testing.assert_array_equal(offsets[4:, longest], [0.05, 0.05, -0.05, -0.05])
    assert np.count_nonzero(offsets) == 8  # one parameter per plan
    scaled, scaled_holds = candidate_plans(settings, (1.0, 2.5))
    np.testing.assert_array_equal(scaled[:8], offsets)  # the amounts as given come first
    np.testing.assert_allclose(scaled[8:], 2.5 * offsets)
    assert scaled_holds.tolist() == holds.tolist() * 2


@pytest.mark.parametrize(
    "bad",
    [
        {"horizon": 0},
        {"check_every": 0},
        {"changes": (("no_such_group", 0, 0.1),)},
        {"changes": (("timing", 2, 0.1),)},  # "timing" has two values
        {"changes": (("torso", 0, 0.0),)},
        {"changes": (("torso", 0, float("nan")),)},
        {"holds": (0,)},
        {"changes": ()},
        {"speed_margin": -0.1},
        {"speed_every": 0},
        {"horizon": 150, "look_horizon": 100},  # a look predicts at least the horizon
        {"alarm_scales": ()},
        {"alarm_scales": (1.0, 0.0)},
        {"alarm_scales": (float("inf"),)},
    ],
)
def test_settings_refuse_what_cannot_plan(bad):
    with pytest.raises(ValueError):
        PlannerSettings(**bad)


def test_planner_file_loads_its_base_and_refuses_bad_files(tmp_path):
    good = tmp_path / "planner.json"
    base = str(pretrained_cruiser_path())
    settings = {"horizon": 20, "alarm_scales": [1, 2.5]}
    good.write_text(json.dumps({"kind": KIND, "base": base, "settings": settings}))
    policy = load_controller_policy(good)
    assert isinstance(policy, PlannerPolicy) and policy.settings.horizon == 20
    assert policy.settings.alarm_scales == (1.0, 2.5)
    np.testing.assert_array_equal(policy.params, cruiser.CruiserPolicy.load(base).params)
    for data in (
        {"kind": KIND, "settings": {}},  # no base
        {"kind": KIND, "base": base, "settings": {"horizont": 20}},  # a typo
        {"kind": KIND, "base": base, "settings": {"check_on_sighting": "no"}},  # truthy
        {"kind": "cruiser", "base": base},
    ):
        bad = tmp_path / "bad.json"
        bad.write_text(json.dumps(data))
        with pytest.raises(ValueError):
            PlannerPolicy.load(bad)
    with pytest.raises(ValueError, match="shape"):
        policy.act(np.zeros(40))
    with pytest.raises(ValueError, match="non-finite"):
        policy.act(np.full(41, np.nan))


def test_planner_estimates_predicts_and_otherwise_is_the_cruiser():
    """In the JAX engine (seed 1, difficulty 2, where the runner does not fall early): the
    planner's actions are the cruiser's step for step; its estimate of the state (observed
    coordinates, shadow muscle states) is the engine's own; and its prediction of the plan in
    force ends where the engine, stepped on with the cruiser, ends. The engine is stepped by
    the same compiled step as the shadow (RunEnv's adds reports to it), to compile once."""
    from l2run.env.runenv import RunEnv
    from l2run.train.planner import _shadow_step

    settings = PlannerSettings(horizon=25, check_every=10)
    planner = PlannerPolicy(cruiser.CruiserPolicy.load(pretrained_cruiser_path()), settings)
    plain = cruiser.CruiserPolicy.load(pretrained_cruiser_path())
    env = RunEnv(engine="jax")
    obs = np.array(env.reset(difficulty=2, seed=1))
    truth = env.engine.state
    step = _shadow_step(settings.integrator)

    def advance(state, action):
        new, new_obs, _, _ = step(state, action)
        return new, np.asarray(new_obs)

    for _ in range(40):
        action = planner.act(obs)
        np.testing.assert_allclose(action, plain.act(obs), rtol=0, atol=1e-12)
        truth, obs = advance(truth, action)
    assert planner.decisions == []  # nothing predicted to fall, so nothing changed

    estimate = planner.estimate(obs)
    for name in ("q", "u", "activation", "fiber_length"):
        np.testing.assert_allclose(
            np.asarray(getattr(estimate, name)), np.asarray(getattr(truth, name)), atol=1e-9
        )
    predict = plan_predictor(settings.horizon, settings.integrator)
    no_change = (np.zeros((1, walker.N_PARAMS)), np.zeros(1, np.int32))
    survived, end_x = predict(plain.params, estimate, plain.memory, *no_change)
    # A longer prediction marking the same step (a look for speed's) passes through it.
    marked = plan_predictor(LOOK_HORIZON, settings.integrator, settings.horizon)
    survived_look, x_marked = marked(plain.params, estimate, plain.memory, *no_change)
    for _ in range(settings.horizon):
        truth, obs = advance(truth, plain.act(obs))
    assert int(survived[0]) == settings.horizon
    assert float(end_x[0]) == pytest.approx(obs[walker.OBS_PELVIS_X], abs=1e-9)
    assert float(x_marked[0]) == pytest.approx(obs[walker.OBS_PELVIS_X], abs=1e-9)
    assert int(survived_look[0]) == LOOK_HORIZON


def test_shadow_muscle_states_follow_opensim():
    """In OpenSim the planner sees only the observation; its shadow's activations (which
    depend on the excitations alone) and fibre lengths track OpenSim's own."""
    from l2run.env.runenv import RunEnv

    planner = PlannerPolicy(
        cruiser.CruiserPolicy.load(pretrained_cruiser_path()), PlannerSettings(check_every=1000)
    )
    env = RunEnv(engine="opensim")
    obs = env.reset(difficulty=2, seed=3)
    start = planner.estimate(obs)
    for _ in range(30):
        obs = env.step(planner.act(obs))[0]
    estimate = planner.estimate(obs)
    real_a, real_l = env.engine.activations(), env.engine.fiber_lengths()
    # They moved (a shadow that stood still would fail), and the estimate moved with them.
    assert np.max(np.abs(real_a - np.asarray(start.activation))) > 0.1
    # To OpenSim's integration error and its reporting of activations clamped at 0.01.
    np.testing.assert_allclose(np.asarray(estimate.activation), real_a, atol=0.02)
    np.testing.assert_allclose(np.asarray(estimate.fiber_length), real_l, rtol=0.02)


def _jax_episode(planner: PlannerPolicy, seed: int, difficulty: int, steps: int):
    """The planner on a JAX-engine course for up to `steps` steps; (steps taken, fell)."""
    from l2run.env.runenv import RunEnv
    from l2run.train.planner import _shadow_step

    env = RunEnv(engine="jax")
    obs = np.array(env.reset(difficulty=difficulty, seed=seed))
    state, step = env.engine.state, _shadow_step(planner.settings.integrator)
    for k in range(steps):
        state, obs, _, done = step(state, planner.act(obs))
        obs = np.asarray(obs)
        if bool(done):
            return k + 1, True
    return steps, False


@pytest.mark.slow  # ~2 min on 2 CPUs (330 steps, thrice); its parts: the tests above and below
def test_planner_saves_a_course_the_cruiser_falls_on():
    """Course 500008 in the JAX engine: the cruiser alone falls at step 273 (recorded in
    docs/training/analytic_contact/); the shipped settings predict it, change plan, and are
    still up at step 330."""
    base = cruiser.CruiserPolicy.load(pretrained_cruiser_path())
    alone_steps, alone_fell = _jax_episode(
        PlannerPolicy(base, PlannerSettings(check_every=10_000)), 500008, 2, 330
    )
    assert alone_fell and alone_steps < 290  # the course still trips the cruiser
    planner = PlannerPolicy(base, PlannerSettings())
    steps, fell = _jax_episode(planner, 500008, 2, 330)
    alarms = [d for d in planner.decisions if d.reason == "fall"]
    assert alarms and alarms[0].survives < planner.settings.horizon
    assert any(d.taken for d in alarms)
    assert not fell and steps == 330

    # With larger changes too, the planner is the same up to its first alarm, where it tries
    # the same candidates and more: its best survives at least as long.
    wider = PlannerPolicy(base, PlannerSettings(alarm_scales=(1.0, 2.5)))
    _jax_episode(wider, 500008, 2, alarms[0].step + 1)
    first = wider.decisions[0]
    assert (first.step, first.reason, first.survives) == (
        alarms[0].step,
        "fall",
        alarms[0].survives,
    )
    assert len(wider._alarm_offsets) == 2 * len(planner._alarm_offsets)
    assert first.best_survives >= alarms[0].best_survives


def test_look_horizon_defaults_to_the_horizon():
    assert PlannerSettings(horizon=40).looks_for == 40
    assert PlannerSettings(horizon=40, look_horizon=90).looks_for == 90


def test_speed_option_switches_only_to_plans_predicted_safe_and_further():
    """On flat ground the course is clear from the start, so the speed option looks at the
    candidates every `speed_every` steps and takes one only when it is predicted to survive
    the look horizon and, after the horizon, be more than `speed_margin` further ahead than
    the plan in force."""
    settings = PlannerSettings(
        horizon=25, check_every=10, speed_margin=0.005, speed_every=10, look_horizon=LOOK_HORIZON
    )
    planner = PlannerPolicy(cruiser.CruiserPolicy.load(pretrained_cruiser_path()), settings)
    _, fell = _jax_episode(planner, 1, 0, 60)
    looks = [d for d in planner.decisions if d.reason == "speed"]
    assert not fell and len(looks) >= 4
    look = settings.looks_for
    for d in looks:
        assert d.survives == settings.horizon  # no alarm: the plan in force was safe
        assert d.taken == (d.best_survives >= look and d.gain > settings.speed_margin)
        assert 0 <= d.safe <= len(planner._offsets)
    assert any(d.taken for d in looks)


def test_check_on_sighting_predicts_when_a_new_obstacle_comes_into_view(monkeypatch):
    """With `check_on_sighting` the planner also predicts on each step whose observation shows
    an obstacle it has not seen (the steps the pelvis passes an obstacle's far edge, so the
    observation moves on to the next one, from the course's own obstacle rows), besides every
    `check_every` steps; without it, only every `check_every` steps."""
    from l2run.env.runenv import RunEnv
    from l2run.train.planner import _shadow_step

    every, steps = 100, 400
    course = RunEnv(engine="jax")
    course.reset(difficulty=2, seed=1)
    rows = np.asarray(course.engine.state.obstacles)
    rows = rows[rows[:, 2] > 0.0]  # the course's obstacles (x, y, r), padding dropped
    assert len(rows) >= 2

    def shown(pelvis_x: float) -> int:
        """Index of the obstacle the observation shows (-1: none ahead)."""
        ahead = rows[:, 0] + rows[:, 2] >= pelvis_x
        return int(np.argmin(np.where(ahead, rows[:, 0], np.inf))) if ahead.any() else -1

    def checks(on_sighting: bool) -> tuple[list[int], list[int]]:
        settings = PlannerSettings(check_every=every, check_on_sighting=on_sighting)
        planner = PlannerPolicy(cruiser.CruiserPolicy.load(pretrained_cruiser_path()), settings)
        called: list[int] = []
        monkeypatch.setattr(planner, "_check", lambda state, speed: called.append(planner._steps))
        env = RunEnv(engine="jax")
        obs = np.array(env.reset(difficulty=2, seed=1))
        state, step = env.engine.state, _shadow_step(settings.integrator)
        indices = []
        for _ in range(steps):
            indices.append(shown(obs[walker.OBS_PELVIS_X]))
            state, obs, _, done = step(state, planner.act(obs))
            obs = np.asarray(obs)
            assert not bool(done)
        sightings = [k for k in range(1, steps) if indices[k] != indices[k - 1] and indices[k] >= 0]
        return called, sightings

    regular = list(range(every, steps, every))
    called, sightings = checks(on_sighting=False)
    assert called == regular
    assert sightings  # the runner passed an obstacle within these steps
    called, sightings = checks(on_sighting=True)
    assert called == sorted(set(regular) | set(sightings))
