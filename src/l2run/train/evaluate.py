"""Evaluate a policy: one episode per seed, serially, in a process pool, or on a Ray cluster.

A policy is named by a string so that worker processes (and Ray nodes) can load it themselves:
`pretrained` (the runner shipped in `l2run/train/pretrained/`: the planner of
`l2run.train.planner` around the shipped cruiser), a gait-, walker-, cruiser- or planner-policy
`.json`, a stable-baselines3 run directory (`l2run train --out DIR`), or `zero`
(all excitations 0, a baseline that falls). Rewards and distances are always the environment's
own: training-only wrappers (reward shaping, mirroring) are never applied here.
"""

from __future__ import annotations

import collections
import json
import re
import zipfile
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from importlib import resources
from multiprocessing import get_context
from pathlib import Path

import gymnasium as gym
import numpy as np

from l2run.course import check_engine_obstacle_physics

ENV_ID = "l2run/Run-v0"
PRETRAINED_FILE = "planner.json"
# The cruiser the shipped planner guards (its "base"): the runner's reflexes on their own.
PRETRAINED_CRUISER_FILE = "runner.json"
# The walker the runner is built on (its obstacle phase), shipped on its own: the base that
# residual and modulation PPO runs and walker searches start from.
PRETRAINED_WALKER_FILE = "walker.json"
OBS_PELVIS_X = 1


@dataclass(frozen=True)
class EpisodeResult:
    """One evaluation episode. distance: final pelvis x (m, ground frame); reward: the seed's."""

    seed: int
    distance: float
    reward: float
    steps: int
    fell: bool
    error: str | None = None


def _shipped(name: str) -> Path:
    return Path(str(resources.files("l2run.train") / "pretrained" / name))


def pretrained_path() -> Path:
    """The shipped pretrained runner's parameter file."""
    return _shipped(PRETRAINED_FILE)


def pretrained_cruiser_path() -> Path:
    """The shipped cruiser's parameter file: the pretrained runner without its planner."""
    return _shipped(PRETRAINED_CRUISER_FILE)


def pretrained_walker_path() -> Path:
    """The shipped walker's parameter file (the runner's obstacle phase, kind "walker")."""
    return _shipped(PRETRAINED_WALKER_FILE)


class _ZeroPolicy:
    def wrap(self, env):
        return env

    def reset(self) -> None:
        pass

    def act(self, obs):
        return np.zeros(18)


class _ControllerAdapter:
    """A hand-designed controller's file (kind "gait", "walker", "cruiser" or "planner")."""

    def __init__(self, path: Path):
        from l2run.train.gait_search import load_controller_policy

        self.policy = load_controller_policy(path)

    def wrap(self, env):
        return env

    def reset(self) -> None:
        self.policy.reset()

    def act(self, obs):
        return self.policy.act(obs)


def load_policy(spec: str):
    """A policy object (`wrap(env)`, `reset()`, `act(obs)`) from its name; see module doc."""
    if spec == "zero":
        return _ZeroPolicy()
    path = pretrained_path() if spec == "pretrained" else Path(spec)
    try:
        if path.is_dir() and (path / "config.json").is_file():
            return _run_policy(path)
        if checkpoint_run(path) is not None:
            return _checkpoint_policy(path)
        if path.is_file() and path.suffix == ".json":
            return _ControllerAdapter(path)
    except (OSError, KeyError, zipfile.BadZipFile) as exc:  # a damaged run or policy file
        raise ValueError(f"cannot load the policy {spec!r}: {type(exc).__name__}: {exc}") from None
    raise ValueError(
        f"unknown policy {spec!r}: expected 'pretrained', 'zero', a gait/walker/cruiser/planner "
        ".json file, a training run directory (with config.json and model.zip) or one of its "
        "checkpoints/*.zip"
    )


# What the 'train' extra adds that parts of training need beyond the base install.
SB3_MODULES = ("torch", "stable_baselines3")
SEARCH_MODULES = ("cma",)


def require_train_extra(modules: tuple[str, ...], what: str = "this") -> None:
    """ValueError naming the 'train' extra, rather than an ImportError deep in a run, when a
    module `what` needs is not installed."""
    import importlib.util

    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        raise ValueError(
            f"{what} needs the 'train' extra (missing: {', '.join(missing)}): "
            "pip install 'l2run[train]'"
        )


def checkpoint_run(path: Path) -> Path | None:
    """The run folder of an SB3 checkpoint (`RUN/checkpoints/NAME.zip`, beside RUN/config.json);
    None for any other path."""
    run = path.parent.parent
    is_checkpoint = path.suffix == ".zip" and path.parent.name == "checkpoints"
    if is_checkpoint and path.is_file() and (run / "config.json").is_file():
        return run
    return None


def _checkpoint_policy(path: Path):
    """An SB3 checkpoint as a policy, with its run's config.json (wrappers, algorithm)."""
    require_train_extra(SB3_MODULES, f"{path} is a stable-baselines3 checkpoint; loading it")
    from l2run.train.sb3 import SB3Policy

    return SB3Policy(checkpoint_run(path), model_file=path)


def _run_policy(path: Path):
    """The policy of a training run directory: PPO (ppo_params.npz) or SB3 (model.zip)."""
    if (path / "ppo_params.npz").is_file():
        from l2run.train.ppo_jax import PPOPolicy

        return PPOPolicy(path)
    from l2run.train.run_dir import read_run_config

    config = read_run_config(path)
    if config.get("algo") == "ppo":
        raise ValueError(
            f"{path} is a PPO run without ppo_params.npz yet: a run writes it at each "
            "checkpoint (checkpoint_every iterations), so one stopped before its first has none"
        )
    if not (path / "model.zip").is_file():
        raise ValueError(f"{path} has config.json but no model.zip (an SB3 run saves both)")
    require_train_extra(SB3_MODULES, f"{path} is a stable-baselines3 run; loading it")
    from l2run.train.sb3 import SB3Policy

    return SB3Policy(path)


class _EpisodeStats(gym.Wrapper):
    """Innermost wrapper recording the environment's own reward, steps and pelvis x."""

    def reset(self, **kw):
        obs, info = self.env.reset(**kw)
        self.distance = float(obs[OBS_PELVIS_X])
        self.reward, self.steps, self.fell, self.error = 0.0, 0, False, None
        return obs, info

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        self.distance = float(obs[OBS_PELVIS_X])
        self.reward += float(reward)
        self.steps += 1
        self.fell = bool(terminated)
        self.error = info.get("error") or self.error
        return obs, reward, terminated, truncated, info


def run_episode(
    policy: str,
    engine: str,
    difficulty: int,
    seed: int,
    max_obstacles: int = 3,
    render_mode: str | None = None,
    record: str | None = None,
    max_steps: int | None = None,
    integrator: str | None = None,
    obstacle_physics: str = "reported",
) -> EpisodeResult:
    """One episode of `policy` on the course drawn from `seed` (optionally shown / recorded).
    `integrator` ("scheme:substeps", JAX engine only) replaces the engine's default scheme;
    `obstacle_physics` "osim-rl-1.5" (OpenSim only) simulates the obstacles as 2017 did."""
    import l2run  # noqa: F401  registers the gymnasium id

    pol = load_policy(policy)
    extra: dict = {"record": record} if record else {}
    if integrator:
        extra["integrator"] = jax_integrator(engine, integrator)
    if obstacle_physics != "reported":
        extra["obstacle_physics"] = obstacle_physics
    if max_steps is not None:
        # Inside the policy's wrappers: an action-repeat wrapper then stops at exactly
        # max_steps environment steps instead of finishing its last repeat past them.
        extra["max_episode_steps"] = int(max_steps)
    base = gym.make(
        ENV_ID, engine=engine, max_obstacles=max_obstacles, render_mode=render_mode, **extra
    )
    stats = _EpisodeStats(base)
    env = pol.wrap(stats)
    try:
        obs, _ = env.reset(seed=int(seed), options={"difficulty": int(difficulty)})
        pol.reset()
        done = False
        while not done:
            obs, _r, terminated, truncated, _info = env.step(pol.act(obs))
            done = terminated or truncated or (max_steps is not None and stats.steps >= max_steps)
    finally:
        env.close()
    return EpisodeResult(
        seed=int(seed),
        distance=stats.distance,
        reward=stats.reward,
        steps=stats.steps,
        fell=stats.fell,
        error=stats.error,
    )


MAX_SEEDS = 100_000  # episodes one command may ask for (each takes seconds to minutes)


def parse_seeds(text: str) -> list[int]:
    """'3' -> [3]; '1-10' -> [1..10] (inclusive); '1,4,7' -> [1, 4, 7]. Each seed in
    [0, 2**32) and at most once; at most MAX_SEEDS of them."""
    from l2run.env.runenv import MAX_SEED

    seeds: list[int] = []
    for part in text.split(","):
        m = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", part)
        if m is None or (m.group(2) is not None and int(m.group(2)) < int(m.group(1))):
            raise ValueError(f"seeds must look like '1-10', '3' or '1,4,7' (>= 0); got {text!r}")
        lo = int(m.group(1))
        hi = int(m.group(2)) if m.group(2) is not None else lo
        if hi > MAX_SEED:
            raise ValueError(f"seeds must be at most {MAX_SEED}; got {text!r}")
        if len(seeds) + hi - lo + 1 > MAX_SEEDS:
            raise ValueError(f"at most {MAX_SEEDS} seeds at once; got {text!r}")
        seeds.extend(range(lo, hi + 1))
    repeated = sorted(s for s, n in collections.Counter(seeds).items() if n > 1)
    if repeated:  # each would run (and count in the summary) twice
        raise ValueError(f"seeds {repeated} are listed more than once in {text!r}")
    return seeds


def jax_integrator(engine: str, integrator: str):
    """The JAX engine's `Integrator` from "scheme:substeps"; a clear error for OpenSim."""
    if engine != "jax":
        raise ValueError(f"an integrator can only be chosen for the jax engine, not {engine!r}")
    from l2run.engines.jax.step import parse_integrator

    return parse_integrator(integrator)


def evaluate(
    policy: str,
    engine: str,
    difficulty: int,
    seeds: list[int],
    max_obstacles: int = 3,
    workers: int = 1,
    ray_address: str | None = None,
    progress: bool = False,
    integrator: str | None = None,
    obstacle_physics: str = "reported",
) -> list[EpisodeResult]:
    """One episode per seed, results in seed order (serial, process pool, or Ray)."""
    if difficulty not in (0, 1, 2):
        raise ValueError(f"difficulty must be 0, 1 or 2, got {difficulty!r}")
    if engine not in ("opensim", "jax"):
        raise ValueError(f"engine must be 'opensim' or 'jax', got {engine!r}")
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    load_policy(policy)  # fail fast, here, on a bad policy name
    if integrator:
        jax_integrator(engine, integrator)  # and on a bad integrator
    check_engine_obstacle_physics(obstacle_physics, engine, max_obstacles)
    args = [
        dict(
            policy=policy,
            engine=engine,
            difficulty=difficulty,
            seed=s,
            max_obstacles=max_obstacles,
            integrator=integrator,
            obstacle_physics=obstacle_physics,
        )
        for s in seeds
    ]
    if ray_address is not None:
        return _evaluate_ray(args, ray_address)
    from tqdm import tqdm

    if workers == 1:
        return [run_episode(**a) for a in tqdm(args, disable=not progress, desc="episodes")]
    # spawn, not fork: OpenSim and JAX hold threads and native state that fork does not copy.
    with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as pool:
        # pool.map yields in seed order as the episodes finish: the bar advances with them
        results = pool.map(_run_episode_kw, args)
        return list(tqdm(results, total=len(args), disable=not progress, desc="episodes"))


def _run_episode_kw(kw: dict) -> EpisodeResult:
    """`run_episode(**kw)` for a process pool, which passes one picklable argument."""
    return run_episode(**kw)


def _evaluate_ray(args: list[dict], address: str) -> list[EpisodeResult]:
    """Run the episodes as Ray tasks. `address='local'` starts a private local Ray instance."""
    try:
        import ray
    except ImportError as exc:  # pragma: no cover - depends on the optional extra
        raise ValueError("--ray needs the 'ray' extra: pip install 'l2run[ray]'") from exc
    started_here = not ray.is_initialized()
    if started_here:
        if address == "local":
            ray.init(include_dashboard=False, log_to_driver=False)
        else:
            ray.init(address=address, log_to_driver=False)
    try:
        remote = ray.remote(run_episode)
        return ray.get([remote.remote(**a) for a in args])
    finally:
        if started_here:
            ray.shutdown()


def summary(results: list[EpisodeResult]) -> dict:
    """Mean/min/max distance (m), mean reward, fall count and rate."""
    d = np.array([r.distance for r in results]) if results else np.zeros(0)
    falls = sum(r.fell for r in results)
    return {
        "episodes": len(results),
        "mean_distance": float(d.mean()) if len(d) else 0.0,
        "min_distance": float(d.min()) if len(d) else 0.0,
        "max_distance": float(d.max()) if len(d) else 0.0,
        "mean_reward": float(np.mean([r.reward for r in results])) if results else 0.0,
        "falls": int(falls),
        "fall_rate": falls / len(results) if results else 0.0,
    }


def to_json(results: list[EpisodeResult], **context) -> str:
    """The `--json` output: context (policy, engine, ...), `episodes` list and `summary`."""
    return json.dumps(
        {**context, "episodes": [asdict(r) for r in results], "summary": summary(results)},
        indent=1,
    )
