"""JAX PPO: the pieces are right (observation statistics, log-probabilities, the pelvis-relative
inputs and shaped reward equal to the gymnasium wrappers', episode bookkeeping), and a tiny run
on the JAX engine checkpoints, does not recompile, resumes (`init_from`), stops on its time
budget, resumes after being stopped (`resume=True`: bit for bit the run that never stopped),
and saves a policy `l2run test` loads."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import re
import shutil

import gymnasium as gym
import jax
import numpy as np
import pytest
from typer.testing import CliRunner

from l2run.train import ppo_jax
from l2run.train.ppo_jax import (
    BASE_POLICY_FILE,
    N_BASE_INPUTS,
    PARAMS_FILE,
    RESUME_STATE_FILE,
    Episodes,
    ObsStats,
    PPOConfig,
    PPOPolicy,
    _log_prob,
    init_params,
    load_base_params,
    load_run,
    no_episodes_finished,
    policy_features,
    resolve_integrators,
    resume_config,
    track_episodes,
    train,
    training_reward,
    update_stats,
)
from l2run.train.wrappers import ABSOLUTE_X_INDICES, PelvisRelative, ShapedReward


def test_running_statistics_equal_batch_statistics():
    rng = np.random.default_rng(0)
    data = rng.normal(2.0, 3.0, size=(300, 41))
    stats = ObsStats(np.zeros(41), np.ones(41), 1e-9)
    for chunk in np.split(data, 3):
        stats = update_stats(stats, chunk)
    np.testing.assert_allclose(stats.mean, data.mean(0), rtol=1e-6)
    np.testing.assert_allclose(stats.var, data.var(0), rtol=1e-6)


def test_gaussian_log_prob_matches_scipy():
    from scipy.stats import norm

    import l2run.engines.jax.params  # noqa: F401  (float64, as in training)

    rng = np.random.default_rng(1)
    mean, log_std, a = rng.normal(size=18), rng.normal(size=18) * 0.3, rng.normal(size=18)
    expected = norm.logpdf(a, mean, np.exp(log_std)).sum()
    assert float(_log_prob(mean, log_std, a)) == pytest.approx(expected, rel=1e-10)


def test_bad_config():
    with pytest.raises(ValueError, match="divisible"):
        PPOConfig(num_envs=3, num_steps=3, num_minibatches=2).validate()
    with pytest.raises(ValueError, match="integrator"):
        PPOConfig(integrator="bogus:3").validate()
    with pytest.raises(ValueError, match="integrator"):
        PPOConfig(first_integrator="rk4:many").validate()
    with pytest.raises(ValueError, match="dtype"):
        PPOConfig(dtype="float16").validate()
    with pytest.raises(ValueError, match="checkpoint_every"):
        PPOConfig(checkpoint_every=0).validate()
    with pytest.raises(ValueError, match="residual_l2"):
        PPOConfig(residual_l2=-1.0).validate()
    with pytest.raises(ValueError, match="critic_warmup"):
        PPOConfig(critic_warmup=-1).validate()


@pytest.mark.parametrize("residual_l2", [0.0, 1.0])
def test_residual_l2_pulls_the_actor_output_towards_the_base(residual_l2):
    """With no reward at all (zero advantages) only the L2 term moves the actor: its output
    shrinks when the term is on and stays put when it is off; the warm-up switch stops both."""
    import jax.numpy as jnp

    from l2run.train.ppo_jax import _adam_init, _mlp, make_functions

    config = PPOConfig(num_envs=4, num_steps=8, num_minibatches=2, residual_l2=residual_l2)
    _, update = make_functions(config)
    key = jax.random.PRNGKey(1)
    params = init_params(key, config)
    params["actor"][-1]["b"] = jnp.full(18, 0.2)  # a residual far from zero
    rng = np.random.default_rng(2)
    obs = jnp.asarray(rng.normal(size=(8, 4, 41)))
    stats = ObsStats(jnp.zeros(41), jnp.ones(41), jnp.asarray(1.0))
    mean = 0.5 + _mlp(params["actor"], obs)
    zeros = jnp.zeros((8, 4))
    traj = {
        "obs": obs, "action": mean,
        "logp": _log_prob(mean, params["log_std"], mean), "value": zeros, "reward": zeros,
        "terminated": zeros.astype(bool), "ended": zeros.astype(bool), "next_value": zeros,
    }  # fmt: skip

    def size(p):
        return float(jnp.mean(jnp.abs(_mlp(p["actor"], obs))))

    lr = jnp.asarray(1e-2)
    for actor_on, moves in ((0.0, False), (1.0, residual_l2 > 0)):
        new, *_ = update(params, _adam_init(params), stats, traj, key, lr, jnp.asarray(actor_on))
        if moves:
            assert size(new) < 0.9 * size(params)
        else:
            assert size(new) == pytest.approx(size(params), rel=1e-9)


def test_integrator_strings_resolve_to_engine_schemes():
    from l2run.engines.jax.integrate import Integrator
    from l2run.engines.jax.rollout import FIRST
    from l2run.engines.jax.step import DEFAULT_INTEGRATOR

    assert resolve_integrators(PPOConfig()) == (DEFAULT_INTEGRATOR, FIRST)
    cfg = PPOConfig(integrator="heun:7", first_integrator="none")
    assert resolve_integrators(cfg) == (Integrator("heun", 7), None)
    cfg = PPOConfig(first_integrator="ros2:50")
    assert resolve_integrators(cfg) == (DEFAULT_INTEGRATOR, Integrator("ros2", 50))


# --- inputs and rewards agree with the gymnasium wrappers -------------------------------------


class _ObsSpaceEnv(gym.Env):
    """Replays given (obs, reward, terminated) steps; observation space as the seed's."""

    observation_space = gym.spaces.Box(-np.inf, np.inf, (41,), np.float64)
    action_space = gym.spaces.Box(0.0, 1.0, (18,), np.float32)

    def __init__(self, steps=()):
        self.steps, self.i = list(steps), 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.i = 0
        return np.zeros(41), {}

    def step(self, action):
        obs, reward, terminated = self.steps[self.i]
        self.i += 1
        return obs, reward, terminated, False, {}


def _random_observations(rng, n):
    obs = rng.normal(size=(n, 41))
    obs[:, 1] = rng.uniform(-1.0, 25.0, n)  # pelvis x far from 0, as after running
    obs[:, ABSOLUTE_X_INDICES] += obs[:, 1:2]  # other x positions near the pelvis
    obs[:, 4] = rng.uniform(-2.0, 8.0, n)  # pelvis vx, some above the speed cap
    obs[:, 2] = rng.uniform(0.6, 1.0, n)  # pelvis y, some below the low height
    return obs


def test_relative_transform_equals_pelvis_relative_wrapper():
    import jax.numpy as jnp

    rng = np.random.default_rng(2)
    obs = _random_observations(rng, 16)
    wrapper = PelvisRelative(_ObsSpaceEnv())
    expected = np.stack([wrapper.observation(o) for o in obs])
    cfg = PPOConfig(pelvis_relative=True)
    np.testing.assert_array_equal(
        np.asarray(policy_features(cfg, jnp.asarray(obs), xp=jnp)), expected
    )
    np.testing.assert_array_equal(policy_features(cfg, obs), expected)
    assert np.all(expected[:, 1] == 0.0) and not np.allclose(expected, obs)
    single = policy_features(cfg, jnp.asarray(obs[0], jnp.float32), xp=jnp)
    assert single.dtype == jnp.float32
    np.testing.assert_allclose(np.asarray(single), expected[0], rtol=1e-6, atol=1e-5)
    np.testing.assert_array_equal(policy_features(PPOConfig(pelvis_relative=False), obs), obs)


def test_shaping_defaults_equal_shaped_reward_defaults():
    import inspect

    params = inspect.signature(ShapedReward.__init__).parameters
    cfg = PPOConfig()
    for name in ("w_speed", "speed_cap", "w_alive", "w_low", "low_height"):
        assert getattr(cfg, name) == params[name].default, name


def test_jax_shaped_reward_equals_shaped_reward_wrapper():
    import jax.numpy as jnp

    rng = np.random.default_rng(3)
    n = 32
    obs = _random_observations(rng, n)
    raw = rng.normal(scale=0.01, size=n)
    terminated = rng.random(n) < 0.3
    weights = {"w_speed": 0.7, "speed_cap": 3.0, "w_alive": 0.2, "w_low": 2.0, "low_height": 0.8}
    env = ShapedReward(_ObsSpaceEnv(zip(obs, raw, terminated, strict=True)), **weights)
    env.reset()
    expected = np.array([env.step(np.zeros(18))[1] for _ in range(n)])
    cfg = PPOConfig(**weights)
    got = training_reward(cfg, jnp.asarray(raw), jnp.asarray(obs), jnp.asarray(terminated), xp=jnp)
    np.testing.assert_allclose(np.asarray(got), expected, rtol=0, atol=1e-12)
    assert not np.allclose(expected, raw)  # the terms are not all zero here
    off = PPOConfig(shaping=False)
    np.testing.assert_array_equal(np.asarray(training_reward(off, raw, obs, terminated)), raw)


def test_episode_bookkeeping_matches_a_loop_over_runners():
    import jax.numpy as jnp

    rng = np.random.default_rng(4)
    t_steps, n = 12, 5
    raw = rng.normal(size=(t_steps, n))
    shaped = raw + rng.normal(size=(t_steps, n))
    ended = rng.random((t_steps, n)) < 0.25
    distance = rng.uniform(0, 10, size=(t_steps, n))
    # Reference: the per-runner Python loop this replaces (running totals carried in).
    ret, sret, length = rng.normal(size=n), rng.normal(size=n), rng.integers(0, 50, n)
    ep = Episodes(jnp.asarray(ret), jnp.asarray(sret), jnp.asarray(length, jnp.int32))
    finished = []
    for t in range(t_steps):
        ret, sret, length = ret + raw[t], sret + shaped[t], length + 1
        for i in np.flatnonzero(ended[t]):
            finished.append((ret[i], sret[i], length[i], distance[t, i]))
            ret[i], sret[i], length[i] = 0.0, 0.0, 0
    done = no_episodes_finished()
    for t in range(t_steps):
        ep, done = track_episodes(ep, done, raw[t], shaped[t], ended[t], distance[t])
    ref = np.array(finished)
    assert float(done.count) == len(finished) > 0
    np.testing.assert_allclose(
        [float(done.raw_return), float(done.shaped_return), float(done.length)],
        ref[:, :3].sum(0),
        rtol=1e-12,
    )
    assert float(done.distance) == pytest.approx(ref[:, 3].sum(), rel=1e-12)
    assert float(done.max_distance) == ref[:, 3].max()
    np.testing.assert_allclose(np.asarray(ep.raw_return), ret, rtol=1e-12)
    np.testing.assert_allclose(np.asarray(ep.shaped_return), sret, rtol=1e-12)
    np.testing.assert_array_equal(np.asarray(ep.length), length)


def test_statistics_of_a_float32_jax_batch_are_kept_in_float64():
    import jax.numpy as jnp

    rng = np.random.default_rng(5)
    data = rng.normal(20.0, 0.5, size=(2, 400, 41))
    stats = ObsStats(np.zeros(41), np.ones(41), np.float64(1e-4))
    jstats = ObsStats(*(jnp.asarray(a, jnp.float64) for a in stats))
    for chunk in data:
        stats = update_stats(stats, chunk)
        jstats = update_stats(jstats, jnp.asarray(chunk, jnp.float32))
    assert jstats.mean.dtype == jnp.float64 and jstats.count.dtype == jnp.float64
    np.testing.assert_allclose(np.asarray(jstats.mean), stats.mean, rtol=1e-6)
    np.testing.assert_allclose(np.asarray(jstats.var), stats.var, rtol=1e-3)


# --- one tiny training run shared by the tests below ------------------------------------------

# A scheme that compiles fast (one derivative per substep, no stiff first step); on this model it
# fails within a few steps, which also exercises the failure/autoreset path and the bookkeeping.
TINY = {
    "num_envs": 4,
    "num_steps": 8,
    "total_steps": 64,  # 2 iterations
    "num_minibatches": 2,
    "dtype": "float32",
    "checkpoint_every": 1,
    "anneal_lr": True,
    "integrator": "euler:1",
    "first_integrator": "none",
}


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    from jax import monitoring

    compile_event = "/jax/core/compile/backend_compile_duration"
    compiles: list[float] = []

    def listener(event, duration, **kwargs):
        if event == compile_event:
            compiles.append(duration)

    out = tmp_path_factory.mktemp("ppo_tiny") / "run"
    snapshot = tmp_path_factory.mktemp("ppo_snapshot") / "run"
    after: dict[int, int] = {}

    def on_iteration(it, row):
        after[it] = len(compiles)
        if it == 0:  # what a run killed now would leave behind
            shutil.copytree(out, snapshot)

    monitoring.register_event_duration_secs_listener(listener)
    stdout = io.StringIO()
    try:
        with contextlib.redirect_stdout(stdout):
            train(PPOConfig(**TINY), out, progress=False, on_iteration=on_iteration)
    finally:
        monitoring.unregister_event_duration_listener(listener)
    return {"out": out, "snapshot": snapshot, "compiles": after, "stdout": stdout.getvalue()}


def _rows(run_dir):
    return list(csv.DictReader((run_dir / "progress.csv").open()))


def test_tiny_run_checkpoints_during_training(tiny_run):
    out = tiny_run["out"]
    with np.load(tiny_run["snapshot"] / PARAMS_FILE) as first, np.load(out / PARAMS_FILE) as last:
        assert int(first["iteration"]) == 0 and int(last["iteration"]) == 1
        assert int(last["env_steps"]) == 64
        assert not np.array_equal(first["actor_0_w"], last["actor_0_w"])  # it kept learning
    PPOPolicy(tiny_run["snapshot"]).act(np.zeros(41))  # the mid-run file is a usable policy
    names = sorted(p.name for p in out.iterdir())
    assert names == ["config.json", PARAMS_FILE, RESUME_STATE_FILE, "progress.csv"]
    lines = [ln for ln in tiny_run["stdout"].splitlines() if ln.startswith("checkpoint")]
    assert len(lines) == 2 and "steps/s" in lines[0] and "distance" in lines[0]


def test_tiny_run_does_not_recompile_after_the_first_iteration(tiny_run):
    counts = tiny_run["compiles"]
    assert counts[0] > 0  # the listener saw the first iteration's compiles
    assert counts[1] == counts[0]


def test_tiny_run_keeps_float32_networks_and_pelvis_relative_statistics(tiny_run):
    config, params, stats = load_run(tiny_run["out"])
    assert config.pelvis_relative and config.dtype == "float32"
    assert params["actor"][0]["w"].dtype == np.float32 and params["log_std"].dtype == np.float32
    assert stats.mean.dtype == np.float64
    assert stats.mean[1] == 0.0  # every policy input had pelvis x = 0
    saved = json.loads((tiny_run["out"] / "config.json").read_text())
    assert saved["pelvis_relative"] is True and saved["integrator"] == "euler:1"


def test_tiny_run_logs_raw_and_shaped_returns(tiny_run):
    rows = _rows(tiny_run["out"])
    assert len(rows) == 2
    for col in ("mean_return", "mean_raw_return", "mean_distance", "max_distance", "mean_length"):
        assert col in rows[0]
    assert float(rows[0]["learning_rate"]) == pytest.approx(3e-4)
    assert float(rows[1]["learning_rate"]) == pytest.approx(1.5e-4)  # annealed
    ended = [int(r["episodes_ended"]) for r in rows]
    assert [int(r["episodes"]) for r in rows] == list(np.cumsum(ended))
    for r in rows:
        if int(r["episodes_ended"]):
            assert float(r["mean_length"]) >= 1
            assert float(r["max_distance"]) >= float(r["mean_distance"])
            assert float(r["mean_return"]) != float(r["mean_raw_return"])  # shaping is on


def test_policy_applies_the_runs_input_transform(tiny_run, tmp_path):
    rng = np.random.default_rng(6)
    policy = PPOPolicy(tiny_run["out"])
    obs = policy.mean + rng.normal(size=41) * np.sqrt(policy.var)
    shifted = obs.copy()
    shifted[ABSOLUTE_X_INDICES] += 7.5  # the same runner 7.5 m further on
    np.testing.assert_allclose(policy.act(shifted), policy.act(obs), atol=1e-6)
    # A run saved before `pelvis_relative` existed saw raw observations.
    old = tmp_path / "old"
    shutil.copytree(tiny_run["out"], old)
    cfg = json.loads((old / "config.json").read_text())
    del cfg["pelvis_relative"]
    (old / "config.json").write_text(json.dumps(cfg))
    old_policy = PPOPolicy(old)
    assert not old_policy.config.pelvis_relative
    assert not np.allclose(old_policy.act(shifted), old_policy.act(obs), atol=1e-6)


def test_init_from_resumes_with_the_saved_weights(tiny_run, tmp_path):
    prev = tiny_run["out"]
    cfg = PPOConfig(**{**TINY, "total_steps": 32, "learning_rate": 0.0, "init_from": str(prev)})
    train(cfg, tmp_path / "resumed", progress=False)
    with np.load(prev / PARAMS_FILE) as a, np.load(tmp_path / "resumed" / PARAMS_FILE) as b:
        for k in a.files:
            if k.startswith(("actor", "critic", "log_std")):
                np.testing.assert_array_equal(a[k], b[k], err_msg=k)  # lr 0: weights unchanged
        # The statistics continued from the saved ones (32 more samples).
        assert float(b["obs_count"]) == pytest.approx(float(a["obs_count"]) + 32, rel=1e-12)


def test_init_from_rejects_other_network_sizes(tiny_run, tmp_path):
    cfg = PPOConfig(**{**TINY, "hidden": [32, 32], "init_from": str(tiny_run["out"])})
    with pytest.raises(ValueError, match="another size"):
        train(cfg, tmp_path / "bad", progress=False)
    cfg = PPOConfig(**{**TINY, "pelvis_relative": False, "init_from": str(tiny_run["out"])})
    with pytest.raises(ValueError, match="pelvis_relative"):
        train(cfg, tmp_path / "bad", progress=False)
    with pytest.raises(ValueError, match="not a PPO run"):
        train(PPOConfig(**{**TINY, "init_from": str(tmp_path)}), tmp_path / "bad", progress=False)
    assert not (tmp_path / "bad").exists()  # nothing written


def test_time_budget_stops_early_and_saves(tiny_run, tmp_path):
    cfg = PPOConfig(
        **{**TINY, "total_steps": 32 * 50, "time_budget_s": 1e-3, "checkpoint_every": 100}
    )
    path = train(cfg, tmp_path / "budget", progress=False)
    assert len(_rows(tmp_path / "budget")) == 1
    with np.load(path) as data:
        assert int(data["iteration"]) == 0
    # The stop wrote the state (though no checkpoint was due), and the budget is per call.
    train(cfg, tmp_path / "budget", progress=False, resume=True)
    assert [int(r["iteration"]) for r in _rows(tmp_path / "budget")] == [0, 1]
    with np.load(path) as data:
        assert int(data["iteration"]) == 1


# --- resuming a stopped run -------------------------------------------------------------------

TIMING_COLUMNS = ("wall_s", "rollout_s", "update_s", "steps_per_s")


def _untimed(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in row.items() if k not in TIMING_COLUMNS} for row in rows]


def _resume_header(path) -> dict:
    with np.load(path) as data:
        return json.loads(str(data["header"]))


def _assert_same_run(run, reference) -> None:
    """Bit for bit the same weights, statistics and whole training state (environments, key,
    optimiser, episodes), and the same progress rows but for their timings."""
    for name in (PARAMS_FILE, RESUME_STATE_FILE):
        with np.load(run / name) as a, np.load(reference / name) as b:
            arrays = sorted(set(a.files) - {"header"})
            assert arrays == sorted(set(b.files) - {"header"})
            for k in arrays:
                assert a[k].dtype == b[k].dtype and a[k].shape == b[k].shape, (name, k)
                assert a[k].tobytes() == b[k].tobytes(), (name, k)
    header, expected = (
        _resume_header(run / RESUME_STATE_FILE),
        _resume_header(reference / RESUME_STATE_FILE),
    )
    assert float(header.pop("wall_s")) > 0 and float(expected.pop("wall_s")) > 0
    assert header == expected and header["next_iteration"] == 2
    assert header["last"] and header["n_episodes"] > 0  # episodes ended and were counted
    rows = _rows(run)
    assert _untimed(rows) == _untimed(_rows(reference))
    assert float(rows[1]["wall_s"]) >= float(rows[0]["wall_s"])  # continued, not restarted


def _quiet_train(config: PPOConfig, out, **kwargs):
    with contextlib.redirect_stdout(io.StringIO()):
        return train(config, out, progress=False, **kwargs)


def test_a_run_extended_by_resume_equals_the_run_that_had_the_budget(tiny_run, tmp_path):
    out = tmp_path / "run"
    _quiet_train(PPOConfig(**{**TINY, "total_steps": 32}), out)  # 1 iteration of tiny_run's 2
    assert len(_rows(out)) == 1 and _resume_header(out / RESUME_STATE_FILE)["next_iteration"] == 1
    path = _quiet_train(PPOConfig(**TINY), out, resume=True)
    assert path == out / PARAMS_FILE
    _assert_same_run(out, tiny_run["out"])
    assert json.loads((out / "config.json").read_text())["total_steps"] == 64


def test_a_killed_run_resumes_from_its_checkpoint_without_the_rows_after_it(tiny_run, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(tiny_run["snapshot"], out)  # the run as it stood after iteration 0
    # Killed after logging iteration 1 (and half of a next row) but before checkpointing it.
    logged = (tiny_run["out"] / "progress.csv").read_text().splitlines()
    with (out / "progress.csv").open("a") as fh:
        fh.write(logged[2] + "\n" + logged[2][:5])
    _quiet_train(PPOConfig(**TINY), out, resume=True)
    _assert_same_run(out, tiny_run["out"])
    assert not list(out.glob(".*"))  # no atomic write left its temporary file


def test_the_resume_file_keeps_every_dtype(tiny_run):
    dtypes = set(_resume_header(tiny_run["out"] / RESUME_STATE_FILE)["dtypes"])
    # float32 networks and engine state, float64 statistics, int32 counters, the uint32 key,
    # bool flags: none promoted or demoted.
    assert {"float32", "float64", "int32", "uint32", "bool"} <= dtypes
    with np.load(tiny_run["out"] / RESUME_STATE_FILE) as data:
        saved = {str(data[k].dtype) for k in data.files if k != "header"}
    assert saved == dtypes


def test_save_and_load_resume_keep_dtypes_and_key_kinds(tmp_path):
    import jax.numpy as jnp

    import l2run.engines.jax.params  # noqa: F401  (float64, as in training)
    from l2run.train.ppo_jax import Position, load_resume, save_resume

    state = {
        "w": jnp.arange(6, dtype=jnp.float32).reshape(2, 3),
        "n": jnp.arange(3, dtype=jnp.int32),
        "x": jnp.ones(2, jnp.float64),
        "typed_key": jax.random.key(1),
        "raw_key": jax.random.PRNGKey(2),
    }
    position = Position(3, 96, 7, {"mean_length": 2.5, "mean_distance": ""}, 12.25)
    save_resume(tmp_path / RESUME_STATE_FILE, state, position)
    like = jax.tree.map(lambda a: a, {**state, "w": jnp.zeros((2, 3), jnp.float32)})
    loaded, got = load_resume(tmp_path / RESUME_STATE_FILE, like)
    assert got == position
    for k in ("w", "n", "x", "raw_key"):
        assert loaded[k].dtype == state[k].dtype
        np.testing.assert_array_equal(np.asarray(loaded[k]), np.asarray(state[k]))
    assert jax.random.key_impl(loaded["typed_key"]) == jax.random.key_impl(state["typed_key"])
    np.testing.assert_array_equal(
        jax.random.key_data(loaded["typed_key"]), jax.random.key_data(state["typed_key"])
    )
    for other in (
        {**state, "w": jnp.zeros((3, 2), jnp.float32)},  # another shape
        {**state, "n": jnp.zeros(3, jnp.int64)},  # another dtype
        {**state, "raw_key": jax.random.key(2)},  # another kind of key
        {**state, "extra": jnp.zeros(1)},  # another structure
    ):
        with pytest.raises(ValueError, match=re.escape(str(tmp_path / RESUME_STATE_FILE))):
            load_resume(tmp_path / RESUME_STATE_FILE, other)


def _folder(path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(path.iterdir())}


def test_resume_refuses_a_folder_without_its_state(tiny_run, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    shutil.copy(tiny_run["out"] / "config.json", out)
    message = rf"{re.escape(str(out))}: it has no {RESUME_STATE_FILE} .* every checkpoint_every"
    with pytest.raises(ValueError, match=message):
        train(PPOConfig(**TINY), out, progress=False, resume=True)
    (out / "config.json").unlink()
    with pytest.raises(ValueError, match=f"no config.json and no {RESUME_STATE_FILE}"):
        train(PPOConfig(**TINY), out, progress=False, resume=True)
    assert not list(out.iterdir())


def _other_format(path) -> None:
    with np.load(path) as data:
        arrays = {k: data[k] for k in data.files}
    header = json.loads(str(arrays["header"]))
    arrays["header"] = np.asarray(json.dumps({**header, "format": header["format"] + 1}))
    with path.open("wb") as fh:
        np.savez(fh, **arrays)


def _flip_a_byte(path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # inside the arrays: the archive's checksum no longer holds
    path.write_bytes(bytes(data))


def test_resume_refuses_a_damaged_or_foreign_state_file(tiny_run, tmp_path):
    damages = {
        "empty": lambda p: p.write_bytes(b""),
        "cut short": lambda p: p.write_bytes(p.read_bytes()[: p.stat().st_size // 2]),
        "not npz": lambda p: p.write_bytes(b"\x00" * 64),
        "a flipped byte": _flip_a_byte,
        "weights only": lambda p: shutil.copy(p.parent / PARAMS_FILE, p),
        "other format": _other_format,
    }
    for name, damage in damages.items():
        out = tmp_path / name.replace(" ", "_")
        shutil.copytree(tiny_run["snapshot"], out)
        damage(out / RESUME_STATE_FILE)
        before = _folder(out)
        with pytest.raises(ValueError, match=re.escape(str(out / RESUME_STATE_FILE))) as info:
            train(PPOConfig(**TINY), out, progress=False, resume=True)
        if name == "other format":
            assert "format" in str(info.value)
        assert _folder(out) == before, name  # nothing rewritten


def test_resume_refuses_a_config_that_differs_beyond_its_budgets(tiny_run, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(tiny_run["snapshot"], out)
    before = _folder(out)
    other = PPOConfig(**{**TINY, "total_steps": 96, "learning_rate": 1e-3, "hidden": [32, 64]})
    message = (
        r"hidden: the run's \[64, 64\], now \[32, 64\]; learning_rate: the run's 0.0003, now 0.001"
    )
    with pytest.raises(ValueError, match=message) as info:
        train(other, out, progress=False, resume=True)
    assert "total_steps" not in str(info.value).partition("):")[2]  # budgets may change
    assert _folder(out) == before


def test_resume_with_its_budget_spent_runs_nothing(tiny_run, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(tiny_run["out"], out)  # done: 2 of 2 iterations
    before = _folder(out)
    ran = []
    for total in (64, 32):
        path = _quiet_train(
            PPOConfig(**{**TINY, "total_steps": total}),
            out,
            resume=True,
            on_iteration=lambda it, row: ran.append(it),
        )
        assert path == out / PARAMS_FILE
    assert ran == [] and _folder(out) == before


def test_resume_config_reads_the_runs_settings(tiny_run, tmp_path):
    assert resume_config(tiny_run["out"]) == PPOConfig(**TINY)
    with pytest.raises(ValueError, match=re.escape(str(tmp_path / "config.json"))):
        resume_config(tmp_path)
    for bad in ({"algo": "ddpg"}, {**TINY, "num_envs": 0}, {**TINY, "num_envs": "4"}, [1]):
        (tmp_path / "config.json").write_text(json.dumps(bad))
        with pytest.raises(ValueError, match=re.escape(str(tmp_path / "config.json"))):
            resume_config(tmp_path)


def test_cli_rejects_clashing_or_unknown_ppo_fields(tmp_path):
    from l2run.cli import app

    runner = CliRunner()
    for overrides, message in (({"total_steps": 5}, "total_steps"), ({"nope": 1}, "nope")):
        cfg = tmp_path / "cfg.json"
        cfg.write_text(json.dumps(overrides))
        result = runner.invoke(
            app,
            ["train", "--algo", "ppo", "--engine", "jax", "--steps", "64",
             "--out", str(tmp_path / "x"), "--config", str(cfg)],
        )  # fmt: skip
        assert result.exit_code != 0 and message in result.output, result.output


@pytest.mark.slow  # compiling the rollout takes 1-3 min on 2 shared cores
def test_tiny_ppo_run_saves_a_policy_that_l2run_test_loads(tmp_path):
    from l2run.cli import app

    runner = CliRunner()
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps({"num_envs": 4, "num_steps": 8, "num_minibatches": 2}))
    out = tmp_path / "ppo"
    result = runner.invoke(
        app,
        ["train", "--algo", "ppo", "--engine", "jax", "--steps", "64", "--difficulty", "0",
         "--out", str(out), "--config", str(cfg)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader((out / "progress.csv").open()))
    assert len(rows) == 2 and float(rows[-1]["rollout_s"]) > 0
    assert "mean_raw_return" in rows[0] and "mean_distance" in rows[0]
    policy = PPOPolicy(out)
    a = policy.act(np.zeros(41))
    assert a.shape == (18,) and np.all((a >= 0) & (a <= 1))
    result = runner.invoke(app, ["test", "--model", str(out), "--difficulty", "0"])
    assert result.exit_code == 0, result.output
    assert re.search(r"episode 1: distance", result.output)


# --- residual runs: PPO on top of a walker ----------------------------------------------------

RESIDUAL = {**TINY, "base_policy": "pretrained", "critic_warmup": 1}


@pytest.fixture(scope="module")
def residual_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("ppo_residual") / "run"
    first = tmp_path_factory.mktemp("ppo_residual_first") / "run"

    def on_iteration(it, row):
        if it == 0:  # the run as it stood after the warm-up iteration
            shutil.copytree(out, first)

    with contextlib.redirect_stdout(io.StringIO()):
        train(PPOConfig(**RESIDUAL), out, progress=False, on_iteration=on_iteration)
    return {"out": out, "first": first}


def test_residual_run_warms_up_the_critic_alone_then_trains_the_actor(residual_run):
    from l2run.train.walker import WalkerPolicy

    out = residual_run["out"]
    init = init_params(jax.random.PRNGKey(0), PPOConfig(**RESIDUAL))
    first_params = residual_run["first"] / PARAMS_FILE
    with np.load(first_params) as first, np.load(out / PARAMS_FILE) as last:
        assert first["actor_0_w"].shape[0] == 41 + N_BASE_INPUTS
        # Iteration 0 (warm-up): the actor and log-std are as initialised (a residual actor's
        # output layer starts at zero), the critic moved.
        np.testing.assert_array_equal(first["log_std"], np.asarray(init["log_std"]))
        np.testing.assert_array_equal(first["actor_2_w"], 0.0)
        np.testing.assert_array_equal(first["actor_2_b"], 0.0)
        assert not np.array_equal(first["critic_0_w"], last["critic_0_w"])
        assert not np.array_equal(first["actor_2_w"], last["actor_2_w"])  # iteration 1 did
    # The run directory carries the walker it added to.
    saved = WalkerPolicy.load(out / BASE_POLICY_FILE)
    np.testing.assert_array_equal(saved.params, load_base_params("pretrained"))


def test_residual_policy_starts_as_its_walker(residual_run):
    from l2run.train.walker import WalkerPolicy

    rng = np.random.default_rng(8)
    policy = PPOPolicy(residual_run["first"])  # after the warm-up: the initial actor
    walker = WalkerPolicy.load(residual_run["out"] / BASE_POLICY_FILE)
    trained = PPOPolicy(residual_run["out"])
    for p in (policy, walker, trained):
        p.reset()
    # A drifting runner: the walker's memory (stance leg, clocks) evolves along the way.
    obs = np.zeros(41)
    obs[[1, 2]] = 0.0, 0.94
    differs = False
    for _ in range(60):
        obs = obs + rng.normal(scale=0.02, size=41)
        action = policy.act(obs)  # each act also steps the walker's memory: once per step
        np.testing.assert_allclose(action, walker.act(obs), atol=1e-12)
        differs |= not np.allclose(trained.act(obs), action, atol=1e-9)
    assert differs  # the trained residual is not nothing
    with pytest.raises(ValueError, match="shape"):
        policy.act(np.zeros(40))


def _one_rollout(config: PPOConfig, seed: int) -> dict:
    """The trajectory of one jitted rollout of `config` from fresh runners on courses 900-903,
    float64, with identity input statistics."""
    import jax.numpy as jnp

    from l2run.engines.jax.params import load_params
    from l2run.engines.jax.rollout import batch_observe, cast_floats, course_pool, reset_from_pool
    from l2run.train.ppo_jax import input_size, make_functions, run_memory

    rollout, _ = make_functions(config)
    model = cast_floats(load_params(), jnp.float64)
    pool = course_pool(range(900, 904), 2, 3)
    key = jax.random.PRNGKey(seed)
    params = init_params(key, config)
    state = reset_from_pool(model, pool, key, config.num_envs)
    obs = batch_observe(model, state)
    memory = jnp.tile(run_memory(config, jnp), (config.num_envs, 1))
    n_in = input_size(config)
    stats = ObsStats(jnp.zeros(n_in), jnp.ones(n_in), jnp.asarray(1.0))
    n = config.num_envs
    episodes = Episodes(jnp.zeros(n), jnp.zeros(n), jnp.zeros(n, jnp.int32))
    *_, traj, _ = rollout(model, pool, params, stats, state, obs, memory, episodes, key)
    return traj


def test_residual_rollout_runs_the_walker_with_memory_reset_at_autoreset():
    """In the jitted rollout, each runner's base excitations and memory inputs equal a numpy
    walker stepped on the same observations, restarted whenever its episode ends."""
    from l2run.train.walker import WalkerPolicy

    config = PPOConfig(**{**RESIDUAL, "pelvis_relative": False, "dtype": "float64"})
    traj = _one_rollout(config, seed=3)
    x, base, ended = (np.asarray(traj[k]) for k in ("obs", "base", "ended"))
    assert ended.any()  # euler:1 fails within a few steps: the reset path is exercised
    walker = WalkerPolicy(load_base_params("pretrained"))
    for env in range(config.num_envs):
        walker.reset()
        for t in range(config.num_steps):
            np.testing.assert_allclose(x[t, env, 41:], walker.memory[:N_BASE_INPUTS], atol=1e-12)
            np.testing.assert_allclose(base[t, env], walker.act(x[t, env, :41]), atol=1e-9)
            if ended[t, env]:
                walker.reset()


def test_a_residual_run_resumes_with_its_own_copy_of_its_walker(residual_run, tmp_path):
    """The base_policy path in a run's config may be relative to wherever it was started (or
    gone since): a resumed run adds to the walker copied into it, and goes on as if never
    stopped."""
    out = tmp_path / "run"
    shutil.copytree(residual_run["first"], out)  # stopped after iteration 0
    saved = json.loads((out / "config.json").read_text())
    (out / "config.json").write_text(json.dumps({**saved, "base_policy": "gone/walker.json"}))
    config = resume_config(out)
    with contextlib.redirect_stdout(io.StringIO()):
        train(config, out, progress=False, resume=True)
    with np.load(out / PARAMS_FILE) as got, np.load(residual_run["out"] / PARAMS_FILE) as want:
        for name in want:
            np.testing.assert_array_equal(got[name], want[name], err_msg=name)
    assert json.loads((out / "config.json").read_text())["base_policy"] == "gone/walker.json"


def test_a_missing_base_policy_fails_before_anything_is_written(tmp_path):
    config = PPOConfig(**{**RESIDUAL, "base_policy": str(tmp_path / "missing.json")})
    with pytest.raises(ValueError, match="cannot read the policy file .*missing.json"):
        train(config, tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()


# --- modulation: PPO moves a few of the walker's parameters each step -------------------------

MODULATED = {
    **RESIDUAL,
    "modulate": ["timing:1", "swing_hip:0"],
    "modulate_scale": [0.05, 0.1],
    "pelvis_relative": False,
    "dtype": "float64",
}


def test_bad_modulation_configs_are_rejected():
    with pytest.raises(ValueError, match="base_policy"):
        PPOConfig(modulate=["timing:1"], modulate_scale=[0.02]).validate()
    with pytest.raises(ValueError, match="one scale per"):
        PPOConfig(**{**MODULATED, "modulate_scale": [0.02]}).validate()
    for bad in (["timing:2"], ["timing"], ["gait:0"], ["timing:-1"]):
        with pytest.raises(ValueError, match="unknown walker parameter"):
            PPOConfig(**{**MODULATED, "modulate": bad, "modulate_scale": [1.0]}).validate()
    with pytest.raises(ValueError, match="twice"):
        PPOConfig(**{**MODULATED, "modulate": ["timing:1"] * 2}).validate()
    with pytest.raises(ValueError, match="modulate_hold needs modulate"):
        PPOConfig(**{**RESIDUAL, "modulate_hold": True}).validate()


def test_modulation_matrix_moves_the_named_parameters():
    from l2run.train.ppo_jax import modulation_matrix
    from l2run.train.walker import PARAM_LAYOUT, unpack

    matrix = modulation_matrix(PPOConfig(**MODULATED))
    moved = unpack(np.array([1.0, 2.0]) @ matrix)
    assert moved["timing"][1] == pytest.approx(0.05) and moved["swing_hip"][0] == 0.2
    others = [moved[g] for g, _ in PARAM_LAYOUT if g not in ("timing", "swing_hip")]
    assert not np.any(np.concatenate(others))
    assert moved["timing"][0] == 0 and not np.any(moved["swing_hip"][1:])


@pytest.fixture(scope="module")
def modulated_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("ppo_modulated") / "run"
    first = tmp_path_factory.mktemp("ppo_modulated_first") / "run"

    def on_iteration(it, row):
        if it == 0:
            shutil.copytree(out, first)

    with contextlib.redirect_stdout(io.StringIO()):
        train(PPOConfig(**MODULATED), out, progress=False, on_iteration=on_iteration)
    return {"out": out, "first": first}


def test_modulated_policy_starts_as_its_walker_and_moves_its_parameters(modulated_run):
    from l2run.train.ppo_jax import modulation_matrix
    from l2run.train.walker import WalkerPolicy

    with np.load(modulated_run["out"] / PARAMS_FILE) as data:
        assert data["log_std"].shape == (2,) and data["actor_2_w"].shape[1] == 2
    first = PPOPolicy(modulated_run["first"])  # after the warm-up: zero output
    trained = PPOPolicy(modulated_run["out"])
    walker = WalkerPolicy.load(modulated_run["out"] / BASE_POLICY_FILE)
    by_hand = WalkerPolicy.load(modulated_run["out"] / BASE_POLICY_FILE)
    matrix = modulation_matrix(trained.config)
    for p in (first, trained, walker, by_hand):
        p.reset()
    rng = np.random.default_rng(5)
    obs = np.zeros(41)
    obs[[1, 2]] = 0.0, 0.94
    differs = False
    for _ in range(60):
        obs = obs + rng.normal(scale=0.02, size=41)
        plain = walker.act(obs)
        np.testing.assert_allclose(first.act(obs), plain, atol=1e-12)
        # The trained actor's output, by hand, moves the walker's parameters for this step.
        x = np.concatenate([obs, by_hand.memory[:N_BASE_INPUTS]])
        x = np.clip((x - trained.mean) / np.sqrt(trained.var + 1e-8), -10.0, 10.0)
        for w, b in trained.actor[:-1]:
            x = np.tanh(x @ w + b)
        output = x @ trained.actor[-1][0] + trained.actor[-1][1]
        expected = by_hand.act(obs, params=by_hand.params + output @ matrix)
        action = trained.act(obs)
        np.testing.assert_allclose(action, expected, atol=1e-12)
        differs |= not np.allclose(action, plain, atol=1e-9)
    assert differs


# Without modulate_hold: slow (~45 s to compile on 2 CPUs); the held variant checks the same
# walker memory and its holding too.
@pytest.mark.parametrize("hold", [pytest.param(False, marks=pytest.mark.slow), True])
def test_modulated_rollout_steps_each_walker_with_its_moved_parameters(hold):
    """The walker memory the policy sees evolves with the sampled modulation (here the step
    time, so the legs swap at other moments than the plain walker's), restarted at
    autoreset; with `modulate_hold` the modulation changes only when a step begins."""
    from l2run.train.ppo_jax import modulation_matrix
    from l2run.train.walker import WalkerPolicy

    config = PPOConfig(
        **{**MODULATED, "init_log_std": 0.5, "integrator": "imex_stiff:2", "modulate_hold": hold}
    )
    config.num_steps = 40
    traj = _one_rollout(config, seed=4)
    x, action, ended = (np.asarray(traj[k]) for k in ("obs", "action", "ended"))
    assert action.shape == (config.num_steps, config.num_envs, 2) and "base" not in traj
    assert ("decide" in traj) == hold
    matrix = modulation_matrix(config)
    moved = WalkerPolicy(load_base_params("pretrained"))
    plain = WalkerPolicy(load_base_params("pretrained"))
    differs, changes = False, 0
    for env in range(config.num_envs):
        moved.reset()
        plain.reset()
        for t in range(config.num_steps):
            walker_inputs = x[t, env, 41 : 41 + N_BASE_INPUTS]
            np.testing.assert_allclose(walker_inputs, moved.memory[:N_BASE_INPUTS], atol=1e-12)
            differs |= not np.allclose(plain.memory[:2], moved.memory[:2])
            if hold:
                begins = moved.memory[1] == 0.0  # reset or swap: time in stance 0
                assert bool(traj["decide"][t, env]) == begins
                if not begins:  # holding: the same modulation as the step before
                    np.testing.assert_array_equal(action[t, env], action[t - 1, env])
                    np.testing.assert_array_equal(x[t, env, -2:], action[t - 1, env])
                changes += begins
            moved.act(x[t, env, :41], params=moved.params + action[t, env] @ matrix)
            plain.act(x[t, env, :41])
            if ended[t, env]:
                moved.reset()
                plain.reset()
    assert differs  # the modulation reached the walker the rollout ran
    if hold:  # each runner decided at reset and at least once more
        assert changes > config.num_envs


def test_holding_policy_decides_only_when_a_step_begins(tmp_path):
    """A `modulate_hold` run's policy computes a modulation at reset and at each leg swap and
    keeps it in between (its inputs include what it holds)."""

    from l2run.train.ppo_jax import modulation_matrix
    from l2run.train.walker import WalkerPolicy

    config = PPOConfig(**{**MODULATED, "modulate_hold": True, "critic_warmup": 0})
    with contextlib.redirect_stdout(io.StringIO()):
        train(config, tmp_path / "run", progress=False)
    policy = PPOPolicy(tmp_path / "run")
    by_hand = WalkerPolicy.load(tmp_path / "run" / BASE_POLICY_FILE)
    matrix = modulation_matrix(policy.config)
    policy.reset()
    by_hand.reset()
    held = np.zeros(2)
    rng = np.random.default_rng(2)
    obs = np.zeros(41)
    obs[[1, 2]] = 0.0, 0.94
    outputs = []
    for _ in range(80):
        obs = obs + rng.normal(scale=0.02, size=41)
        x = np.concatenate([obs, by_hand.memory[:N_BASE_INPUTS], held])
        x = np.clip((x - policy.mean) / np.sqrt(policy.var + 1e-8), -10.0, 10.0)
        for w, b in policy.actor[:-1]:
            x = np.tanh(x @ w + b)
        if by_hand.memory[1] == 0.0:
            held = x @ policy.actor[-1][0] + policy.actor[-1][1]
        outputs.append(held)
        expected = by_hand.act(obs, params=by_hand.params + held @ matrix)
        np.testing.assert_allclose(policy.act(obs), expected, atol=1e-12)
    distinct = {tuple(o) for o in outputs}
    assert 2 <= len(distinct) < len(outputs) / 5  # a few decisions, each held for many steps


def test_progress_header_is_on_disk_before_the_first_iteration(tmp_path, monkeypatch) -> None:
    out = tmp_path / "run"

    class Killed(Exception):
        pass

    def rollout(*_args):
        raise Killed((out / "progress.csv").read_text())

    monkeypatch.setattr(ppo_jax, "_cached_functions", lambda _key: (rollout, None))
    with pytest.raises(Killed) as info:
        train(PPOConfig(**TINY), out, progress=False)
    assert str(info.value).startswith("iteration,env_steps,")


def test_the_cli_resumes_a_stopped_ppo_run_to_its_own_budget(tiny_run, tmp_path):
    from typer.testing import CliRunner

    from l2run.cli import app

    out = tmp_path / "run"
    shutil.copytree(tiny_run["snapshot"], out)  # stopped after iteration 0 of 2
    first_row = (out / "progress.csv").read_text().splitlines()[1]
    result = CliRunner().invoke(app, ["train", "--resume", str(out)])
    assert result.exit_code == 0, result.output
    assert f"model saved to {out / PARAMS_FILE}" in " ".join(result.output.split())
    rows = (out / "progress.csv").read_text().splitlines()[1:]
    assert len(rows) == 2 and rows[0] == first_row  # went on: iteration 0 kept, timings too
    with np.load(out / PARAMS_FILE) as got, np.load(tiny_run["out"] / PARAMS_FILE) as want:
        assert sorted(got) == sorted(want)
        for name in want:
            np.testing.assert_array_equal(got[name], want[name], err_msg=name)
