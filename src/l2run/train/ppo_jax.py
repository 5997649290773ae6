"""PPO on the JAX engine, CleanRL-style: one file, a dataclass of arguments, readable top to bottom.

The whole rollout (policy + physics for `num_envs` runners over `num_steps` control steps) is one
jitted `lax.scan` over the engine's functional API (`l2run.engines.jax.rollout`), with same-step
autoreset onto courses drawn from a pool; the PPO update (GAE, clipped surrogate, value loss,
Adam, then the observation statistics) is a second jitted function. Episode bookkeeping (running
returns, finished-episode sums, distances) happens inside the rollout, so the host does a fixed
handful of Python operations per iteration whatever `num_envs` and `num_steps` are.

Why our own ~800 lines instead of Brax's PPO trainer: on this machine the update is ~2 % of an
iteration and the rollout (physics) the rest (`progress.csv` logs `rollout_s` and `update_s`
per iteration; README, section Training), so another trainer could not make training measurably
faster, while this one needs no extra dependency (Brax pulls flax, optax, orbax, mujoco) and uses
the engine's functional API directly instead of an adapter.

Policy: Gaussian over excitations with a state-independent log-std; actions are clipped to
[0, 1] by the environment (as CleanRL's continuous PPO does). The policy sees the observation
with x positions relative to the pelvis (`pelvis_relative`, the `PelvisRelative` wrapper's
transform), normalised with running mean/variance statistics that are frozen during each
iteration and saved with the model. Training optimises the seed's reward plus `ShapedReward`'s
terms (`shaping`); `progress.csv` reports both that and the seed's own return and distance.
With `base_policy` the actor learns a residual: its output is added to the excitations of a
walker (`l2run.train.walker`) that runs inside the rollout with its memory per runner.
Run directory: `config.json`, `ppo_params.npz` (weights + observation statistics, rewritten
atomically every `checkpoint_every` iterations), `ppo_resume.npz` (the whole training state at
the same checkpoints, which `train(..., resume=True)` continues from), `progress.csv`, and for a
residual run `base_policy.json`.
"""

from __future__ import annotations

import csv
import json
import sys
import time
import zipfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields, replace
from functools import lru_cache
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from l2run.atomic_files import replacing
from l2run.course import check_max_obstacles
from l2run.env.runenv import MAX_SEED, check_seed
from l2run.train.json_files import write_json_object
from l2run.train.resume_settings import check_same_settings
from l2run.train.run_dir import prepare_out_dir, read_run_config

OBS_SIZE = 41
ACT_SIZE = 18
PELVIS_X = 1  # observation index of the pelvis x (m, ground frame)
PARAMS_FILE = "ppo_params.npz"
BASE_POLICY_FILE = "base_policy.json"  # the walker a residual run adds to, copied into the run
# A residual run's extra policy inputs: the walker's stance leg, time in stance and time since
# reset (s), read from its memory before the step (`l2run.train.walker.MEMORY_LAYOUT`).
BASE_MEMORY_INPUTS = slice(0, 3)
N_BASE_INPUTS = BASE_MEMORY_INPUTS.stop - BASE_MEMORY_INPUTS.start
RESTING_EXCITATION = 0.5  # without a base policy the actor's output is added to this
ACTOR_OUTPUT_SCALE = 0.01  # orthogonal init gain of the actor's last layer (CleanRL's)
FIRST_INTEGRATOR_NONE = "none"  # `first_integrator` value: every step uses `integrator`
# progress.csv columns about finished episodes: means over the episodes that ended in the latest
# iteration that had any (empty before the first ends).
EPISODE_COLUMNS = (
    "mean_return", "mean_raw_return", "mean_distance", "max_distance", "mean_length",
)  # fmt: skip


@dataclass
class PPOConfig:
    total_steps: int = 1_000_000  # environment steps over all runners (this run only)
    num_envs: int = 64
    num_steps: int = 64  # control steps per runner per iteration
    learning_rate: float = 3e-4
    anneal_lr: bool = False  # linear decay to 0 over the iterations (CleanRL's)
    gamma: float = 0.99
    gae_lambda: float = 0.95
    update_epochs: int = 4
    num_minibatches: int = 4
    clip_coef: float = 0.2
    ent_coef: float = 0.0
    vf_coef: float = 0.5
    max_grad_norm: float = 0.5
    hidden: list[int] = field(default_factory=lambda: [64, 64])
    init_log_std: float = -1.0
    seed: int = 0
    difficulty: int = 0
    max_obstacles: int = 3
    course_pool_size: int = 256
    dtype: str = "float64"  # engine and networks: "float32" or "float64"
    # Engine schemes "scheme:substeps" (e.g. "rk4:20"); "" = the engine's defaults.
    # first_integrator: the first step of each episode; "none" = `integrator` there too.
    integrator: str = ""
    first_integrator: str = ""
    pelvis_relative: bool = True  # policy inputs: x positions relative to the pelvis
    # Training-only reward terms (`l2run.train.wrappers.ShapedReward`'s formula and defaults).
    shaping: bool = True
    w_speed: float = 0.5
    speed_cap: float = 4.0  # m/s
    w_alive: float = 0.5
    w_low: float = 1.0
    low_height: float = 0.75  # m
    time_budget_s: float = 0.0  # stop (and save) before this wall time is exceeded; 0 = none
    checkpoint_every: int = 10  # iterations between atomic `ppo_params.npz` writes
    init_from: str = ""  # a run directory: start from its weights and observation statistics
    # Residual learning: a walker file (`l2run.train.walker`) whose excitations the actor's
    # output is added to, instead of to 0.5; "pretrained" = the shipped walker. The walker
    # keeps its memory per runner inside the rollout, and the policy also sees its stance leg,
    # time in stance and time since reset. Copied into the run directory as base_policy.json.
    base_policy: str = ""
    # Iterations at the start during which only the critic learns (the actor and log-std stay
    # as initialised), so the first policy updates follow a value function fitted to the base.
    critic_warmup: int = 0
    # Weight of the mean squared actor output (per runner, summed over muscles) in the loss: it
    # holds a residual near its base where the advantages carry no consistent signal (without
    # it, PPO's fixed-size steps random-walk a tuned walker into falling; README, Training).
    residual_l2: float = 0.0
    # Modulation (with `base_policy`): instead of adding to the excitations, the actor's outputs
    # move these walker parameters, every step, each "group:index" of
    # `l2run.train.walker.PARAM_LAYOUT` (e.g. "timing:1", the longest step time) by its output
    # times its `modulate_scale` (the parameter's units per unit of output); the walker's
    # excitations with the moved parameters are what the runner does. A handful of meaningful
    # dimensions (step time, foot placement, trunk lean) in place of 18 muscles.
    modulate: list[str] = field(default_factory=list)
    modulate_scale: list[float] = field(default_factory=list)
    # A modulation drawn once per step of the gait: at each leg swap (and at reset) the actor
    # decides, and the walker keeps that modulation until the next swap. ~35 decisions per
    # episode instead of 1000, each one a whole step's foot placement and timing; only the
    # decisions enter the policy loss. The policy also sees the modulation it holds.
    modulate_hold: bool = False
    algo: str = "ppo"  # marks the run directory for `l2run test` / `evaluate`

    def validate(self) -> None:
        if self.num_envs < 1 or self.num_steps < 1 or self.total_steps < 1:
            raise ValueError("num_envs, num_steps and total_steps must be >= 1")
        if self.num_minibatches < 1 or (self.num_envs * self.num_steps) % self.num_minibatches:
            raise ValueError("num_envs * num_steps must be divisible by num_minibatches")
        if self.difficulty not in (0, 1, 2):
            raise ValueError(f"difficulty must be 0, 1 or 2, got {self.difficulty!r}")
        check_max_obstacles(self.max_obstacles)
        if isinstance(self.course_pool_size, bool) or not isinstance(self.course_pool_size, int):
            raise ValueError(f"course_pool_size must be an int, got {self.course_pool_size!r}")
        if self.course_pool_size < 1:
            raise ValueError(f"course_pool_size must be >= 1, got {self.course_pool_size}")
        # The course seeds (`course_seeds`) must stay in numpy's range.
        highest = (MAX_SEED - FIRST_COURSE_SEED - self.course_pool_size + 1) // COURSE_SEED_STRIDE
        check_seed(self.seed, highest=highest, optional=False)
        if self.dtype not in ("float32", "float64"):
            raise ValueError(f"dtype must be 'float32' or 'float64', got {self.dtype!r}")
        if not self.hidden or any(int(h) < 1 for h in self.hidden):
            raise ValueError(f"hidden must be a non-empty list of layer sizes, got {self.hidden}")
        if self.time_budget_s < 0 or self.checkpoint_every < 1:
            raise ValueError("time_budget_s must be >= 0 and checkpoint_every >= 1")
        if self.residual_l2 < 0:
            raise ValueError(f"residual_l2 must be >= 0, got {self.residual_l2}")
        if self.critic_warmup < 0:
            raise ValueError(f"critic_warmup must be >= 0, got {self.critic_warmup}")
        if self.learning_rate < 0:
            raise ValueError(f"learning_rate must be >= 0, got {self.learning_rate}")
        resolve_integrators(self)  # raises ValueError on a malformed scheme string
        if self.modulate or self.modulate_scale:
            if not self.base_policy:
                raise ValueError("modulate needs a base_policy (the walker it modulates)")
            if len(self.modulate_scale) != len(self.modulate):
                raise ValueError(
                    f"modulate_scale needs one scale per modulated parameter: "
                    f"{len(self.modulate)} names, {len(self.modulate_scale)} scales"
                )
            modulation_indices(self.modulate)  # raises ValueError on an unknown parameter
        if self.modulate_hold and not self.modulate:
            raise ValueError("modulate_hold needs modulate (the parameters it holds)")


def resolve_integrators(config: PPOConfig) -> tuple[Any, Any]:
    """(integrator, first_integrator) for `autoreset_step` from the config's strings."""
    from l2run.engines.jax.step import first_step_integrator, parse_integrator

    integrator = parse_integrator(config.integrator or None)
    if not config.first_integrator:
        first = first_step_integrator(integrator)
    elif config.first_integrator.lower() == FIRST_INTEGRATOR_NONE:
        first = None
    else:
        first = parse_integrator(config.first_integrator)
    return integrator, first


# --- inputs and rewards (shared with the gymnasium wrappers) ----------------------------------


def policy_features(config: PPOConfig, obs, xp=np):
    """The policy's input before normalisation: the observation, pelvis-relative if set."""
    from l2run.train.wrappers import relative_to_pelvis

    return relative_to_pelvis(obs, xp=xp) if config.pelvis_relative else xp.asarray(obs)


def training_reward(config: PPOConfig, raw, obs, terminated, xp=np):
    """Reward PPO optimises: the seed's `raw` reward plus `ShapedReward`'s terms (if `shaping`),
    computed from the observation after the step (`obs`, absolute) and the fall flag."""
    if not config.shaping:
        return raw
    from l2run.engines.base import STEP_SIZE_S
    from l2run.train.wrappers import shaping_terms

    t = shaping_terms(
        obs,
        terminated,
        config.w_speed,
        config.speed_cap,
        config.w_alive,
        config.w_low,
        config.low_height,
        STEP_SIZE_S,
        xp=xp,
    )
    # Summed in `ShapedReward`'s order, so float64 results agree bit for bit.
    return raw + t["speed"] + t["alive"] + t["low"]


# --- networks (plain pytrees of arrays) ------------------------------------------------------


def _init_mlp(key, sizes: list[int], last_scale: float, dtype):
    import jax
    import jax.numpy as jnp

    layers = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        key, sub = jax.random.split(key)
        scale = last_scale if i == len(sizes) - 2 else np.sqrt(2.0)
        w = jax.nn.initializers.orthogonal(scale)(sub, (n_in, n_out), dtype)
        layers.append({"w": w, "b": jnp.zeros(n_out, dtype)})
    return layers


def _mlp(layers, x):
    import jax.numpy as jnp

    for layer in layers[:-1]:
        x = jnp.tanh(x @ layer["w"] + layer["b"])
    return x @ layers[-1]["w"] + layers[-1]["b"]


def input_size(config: PPOConfig) -> int:
    """Length of the policy's input: the observation, plus the walker's memory if residual
    (and the held modulation with `modulate_hold`)."""
    held = len(config.modulate) if config.modulate_hold else 0
    return OBS_SIZE + (N_BASE_INPUTS if config.base_policy else 0) + held


def base_inputs(memory, xp=np):
    """The residual policy's extra inputs from walker memories (..., MEMORY_SIZE)."""
    return xp.asarray(memory)[..., BASE_MEMORY_INPUTS]


def policy_inputs(config: PPOConfig, obs, memory, xp=np):
    """The policy's whole input before normalisation: `policy_features`, followed in a residual
    run by the walker's `base_inputs` and, with `modulate_hold`, the held modulation (`memory`:
    `run_memory` layout; ignored without a base policy and may then be None)."""
    x = policy_features(config, obs, xp=xp)
    if not config.base_policy:
        return x
    parts = [x, base_inputs(memory, xp=xp)]
    if config.modulate_hold:
        parts.append(held_modulation(memory, xp=xp))
    return xp.concatenate(parts, axis=-1)


def held_modulation(memory, xp=np):
    """The modulation a `modulate_hold` run holds, from its memory (..., MEMORY_SIZE + K)."""
    from l2run.train.walker import MEMORY_SIZE

    return xp.asarray(memory)[..., MEMORY_SIZE:]


def deciding(memory, xp=np):
    """Whether a `modulate_hold` runner draws a new modulation this step: its walker's step
    has just begun (time in stance exactly 0, as a swap and a reset set it)."""
    from l2run.train.walker import MEMORY_LAYOUT

    return xp.asarray(memory)[..., MEMORY_LAYOUT.index("t_stance")] == 0.0


def run_memory(config: PPOConfig, xp=np):
    """A runner's memory at reset: the walker's, then (with `modulate_hold`) a zero held
    modulation."""
    from l2run.train.walker import initial_memory

    memory = initial_memory(xp)
    if config.modulate_hold:
        memory = xp.concatenate([memory, xp.zeros(len(config.modulate))])
    return memory


def modulation_indices(names: list[str]) -> np.ndarray:
    """Indices into the walker's parameter vector of "group:index" names (`PARAM_LAYOUT`)."""
    from l2run.train.controller_params import group_offsets
    from l2run.train.walker import PARAM_LAYOUT

    offsets, sizes = group_offsets(PARAM_LAYOUT), dict(PARAM_LAYOUT)
    indices = []
    for name in names:
        group, _, index = str(name).partition(":")
        if group not in sizes or not index.isdigit() or int(index) >= sizes[group]:
            known = ", ".join(f"{g}:0..{n - 1}" for g, n in PARAM_LAYOUT)
            raise ValueError(f"unknown walker parameter {name!r} to modulate; known: {known}")
        indices.append(offsets[group] + int(index))
    if len(set(indices)) != len(indices):
        raise ValueError(f"modulate names a parameter twice: {names}")
    return np.asarray(indices, dtype=int)


def modulation_matrix(config: PPOConfig) -> np.ndarray:
    """(K, N_PARAMS): actor output k moves walker parameter `modulate[k]` by
    `modulate_scale[k]` per unit, so the walker's parameters are base + output @ matrix."""
    from l2run.train.walker import N_PARAMS

    matrix = np.zeros((len(config.modulate), N_PARAMS))
    matrix[np.arange(len(config.modulate)), modulation_indices(config.modulate)] = np.asarray(
        config.modulate_scale, dtype=float
    )
    return matrix


def steer(config: PPOConfig, base_params, matrix, memory, obs, output, xp=np):
    """One modulated walker step for one runner: (memory after it, excitations (18,), the
    modulation in force). The walker runs with `base_params + modulation @ matrix`; with
    `modulate_hold` the modulation is `output` only when a step begins (`deciding`), else
    the one held in `memory` (`run_memory` layout), and the memory carries it on.

    The one definition of a modulated step: the training rollout (vmapped), `PPOPolicy` and
    the screening script all call it."""
    from l2run.train import walker

    if config.modulate_hold:
        output = xp.where(deciding(memory, xp), output, held_modulation(memory, xp))
    moved = base_params + output @ matrix
    new_memory, excitation = walker.control(moved, memory[: walker.MEMORY_SIZE], obs, xp=xp)
    if config.modulate_hold:
        new_memory = xp.concatenate([new_memory, output])
    return new_memory, excitation, output


def action_size(config: PPOConfig) -> int:
    """Length of the actor's output: the modulated walker parameters, else 18 excitations."""
    return len(config.modulate) if config.modulate else ACT_SIZE


def output_base(config: PPOConfig) -> float:
    """What the actor's output is added to when no per-step base applies: 0.5 excitation
    without a walker, 0 for a modulation (an offset on the walker's parameters)."""
    return 0.0 if config.modulate else RESTING_EXCITATION


def load_base_params(path: str | Path) -> np.ndarray:
    """The walker parameters a residual run adds to ("pretrained" = the shipped walker, the
    runner's obstacle phase: `evaluate.pretrained_walker_path`)."""
    from l2run.train.walker import WalkerPolicy

    if str(path) == "pretrained":
        from l2run.train.evaluate import pretrained_walker_path

        path = pretrained_walker_path()
    return WalkerPolicy.load(path).params


def _layer_sizes(config: PPOConfig) -> dict[str, list[int]]:
    hidden = [int(h) for h in config.hidden]
    n_in = input_size(config)
    return {"actor": [n_in, *hidden, action_size(config)], "critic": [n_in, *hidden, 1]}


def init_params(key, config: PPOConfig) -> dict:
    """Fresh actor, critic and log-std, every leaf a strong `config.dtype` array (a weak or
    float64 leaf in a float32 run would promote and recompile the rollout after an update)."""
    import jax
    import jax.numpy as jnp

    dtype = jnp.dtype(config.dtype)
    sizes = _layer_sizes(config)
    # A residual actor starts at exactly zero output, so the run starts as its walker: a small
    # random output layer (CleanRL's 0.01) already moves a tuned walker's excitations by a few %.
    last_scale = 0.0 if config.base_policy else ACTOR_OUTPUT_SCALE
    k1, k2 = jax.random.split(key)
    return {
        "actor": _init_mlp(k1, sizes["actor"], last_scale, dtype),
        "critic": _init_mlp(k2, sizes["critic"], 1.0, dtype),
        "log_std": jnp.full(action_size(config), config.init_log_std, dtype=dtype),
    }


def action_mean(params, obs_norm, base=RESTING_EXCITATION):
    """Mean excitation: `base` + network output. `base` is 0.5 (a resting runner near half
    activation) or, in a residual run, the walker's excitations for this step."""
    return base + _mlp(params["actor"], obs_norm)


class ObsStats(NamedTuple):
    mean: Any
    var: Any
    count: Any


def normalize(stats: ObsStats, obs):
    """(obs − mean)/std clipped to ±10, in obs's dtype (the statistics are kept in float64)."""
    import jax.numpy as jnp

    mean = jnp.asarray(stats.mean).astype(obs.dtype)
    var = jnp.asarray(stats.var).astype(obs.dtype)
    return jnp.clip((obs - mean) / jnp.sqrt(var + 1e-8), -10.0, 10.0)


def update_stats(stats: ObsStats, batch):
    """Parallel (Chan et al.) update of running mean/variance with a batch (n, 41).

    Array-generic (numpy or jax): the batch moments are taken in the batch's dtype (two-pass
    variance) and combined in the statistics' dtype.
    """
    n = batch.shape[0]
    b_mean = batch.mean(0).astype(stats.mean.dtype)
    b_var = batch.var(0).astype(stats.var.dtype)
    delta = b_mean - stats.mean
    total = stats.count + n
    mean = stats.mean + delta * n / total
    m2 = stats.var * stats.count + b_var * n + delta**2 * stats.count * n / total
    return ObsStats(mean, m2 / total, total)


# --- Adam with global-norm clipping -----------------------------------------------------------


def _adam_init(params):
    import jax
    import jax.numpy as jnp

    zeros = jax.tree.map(jnp.zeros_like, params)
    return {"m": zeros, "v": jax.tree.map(jnp.zeros_like, params), "t": jnp.zeros((), jnp.int32)}


def _adam_step(params, grads, opt, lr, max_norm, b1=0.9, b2=0.999, eps=1e-5):
    import jax
    import jax.numpy as jnp

    norm = jnp.sqrt(sum(jnp.sum(g**2) for g in jax.tree.leaves(grads)))
    grads = jax.tree.map(lambda g: g * jnp.minimum(1.0, max_norm / (norm + 1e-12)), grads)
    t = opt["t"] + 1
    tf = t.astype(lr.dtype)
    m = jax.tree.map(lambda m, g: b1 * m + (1 - b1) * g, opt["m"], grads)
    v = jax.tree.map(lambda v, g: b2 * v + (1 - b2) * g**2, opt["v"], grads)
    lr_t = lr * jnp.sqrt(1 - b2**tf) / (1 - b1**tf)
    params = jax.tree.map(
        lambda p, m, v: (p - lr_t * m / (jnp.sqrt(v) + eps)).astype(p.dtype), params, m, v
    )
    return params, {"m": m, "v": v, "t": t}


# --- training ---------------------------------------------------------------------------------


def _log_prob(mean, log_std, action):
    import jax.numpy as jnp

    z = (action - mean) / jnp.exp(log_std)
    return jnp.sum(-0.5 * z**2 - log_std - 0.5 * jnp.log(2 * jnp.pi), axis=-1)


class Episodes(NamedTuple):
    """Per-runner running totals of the episode in progress (carried across iterations)."""

    raw_return: Any  # (B,) the seed's reward summed so far
    shaped_return: Any  # (B,) the training reward summed so far
    length: Any  # (B,) int32 steps so far


class Finished(NamedTuple):
    """Sums over the episodes that ended during one rollout (float64 scalars)."""

    count: Any
    raw_return: Any
    shaped_return: Any
    length: Any
    distance: Any  # pelvis x at the end of the episode, m
    max_distance: Any  # -inf when none ended


def no_episodes_finished() -> Finished:
    import jax.numpy as jnp

    zero = jnp.zeros((), jnp.float64)
    return Finished(zero, zero, zero, zero, zero, jnp.full((), -jnp.inf, jnp.float64))


def track_episodes(ep: Episodes, done: Finished, raw, shaped, ended, distance):
    """One step of episode bookkeeping for all runners (jax, no loop over runners).

    raw, shaped: (B,) this step's seed and training rewards; ended (B,) bool; distance (B,)
    pelvis x after the step (m). Returns the running totals with finished episodes reset to
    0, and `done` plus the sums over the episodes that ended at this step.
    """
    import jax.numpy as jnp

    raw_ret = ep.raw_return + raw
    shaped_ret = ep.shaped_return + shaped
    length = ep.length + 1

    def total(a):
        return jnp.sum(jnp.where(ended, a, 0)).astype(jnp.float64)

    done = Finished(
        done.count + jnp.sum(ended).astype(jnp.float64),
        done.raw_return + total(raw_ret),
        done.shaped_return + total(shaped_ret),
        done.length + total(length),
        done.distance + total(distance),
        jnp.maximum(
            done.max_distance, jnp.max(jnp.where(ended, distance, -jnp.inf)).astype(jnp.float64)
        ),
    )
    ep = Episodes(
        jnp.where(ended, 0, raw_ret).astype(ep.raw_return.dtype),
        jnp.where(ended, 0, shaped_ret).astype(ep.shaped_return.dtype),
        jnp.where(ended, 0, length).astype(ep.length.dtype),
    )
    return ep, done


def _strong(tree):
    """Every leaf with its own dtype but not weakly typed (jit keys on weak types)."""
    import jax
    from jax import lax

    return jax.tree.map(lambda a: lax.convert_element_type(a, a.dtype), tree)


def make_functions(config: PPOConfig):
    """The jitted rollout and update functions for `config`.

    rollout(model, pool, params, stats, env_state, obs, memory, episodes, key)
        -> (env_state, obs, memory, episodes, key, traj, finished)
    (`memory`: the base walker's, (num_envs, MEMORY_SIZE); unused without `base_policy`)
    update(params, opt, stats, traj, key, lr, actor_on) -> (params, opt, stats, losses)
    (`actor_on`: 1, or 0 while only the critic learns)
    The engine parameters and the course pool are arguments (not constants baked into the
    program), so runs that differ only in those or in `RUNTIME_FIELDS` share one compile.
    """
    import jax
    import jax.numpy as jnp

    from l2run.engines.jax.rollout import autoreset_step, reset_from_pool
    from l2run.engines.jax.xla_options import engine_jit

    n_env, n_steps = config.num_envs, config.num_steps
    dtype = jnp.dtype(config.dtype)
    integrator, first_integrator = resolve_integrators(config)
    n_inputs = input_size(config)

    residual = bool(config.base_policy)
    modulated = bool(config.modulate)
    n_act = action_size(config)
    if residual:
        from l2run.train import walker

        walker_params = jnp.asarray(load_base_params(config.base_policy), dtype)
        base_control = jax.vmap(lambda m, o: walker.control(walker_params, m, o, xp=jnp))
        fresh_memory = run_memory(config, jnp).astype(dtype)
    if modulated:
        matrix = jnp.asarray(modulation_matrix(config), dtype)
        # Each runner's walker with its own (possibly held) modulation this step.
        steer_batch = jax.vmap(
            lambda m, o, a: steer(config, walker_params, matrix, m, o, a, xp=jnp)
        )

    def modulated_control(action, obs, memory):
        """(memory after this step, excitations (B, 18), the modulation in force (B, K))."""
        new_memory, excitation, used = steer_batch(memory, obs, action)
        return new_memory.astype(dtype), excitation.astype(dtype), used.astype(dtype)

    def features(obs, memory):
        return policy_inputs(config, obs, memory, xp=jnp).astype(dtype)

    def base_action(obs, memory):
        """(walker memory after this step, base excitations (B, 18)) for the batch; for a
        modulation, the memory as it is and 0 (the walker runs once the action is drawn)."""
        if not residual or modulated:
            return memory, output_base(config)
        new_memory, action = base_control(memory, obs)
        return new_memory.astype(dtype), action.astype(dtype)

    @engine_jit
    def rollout(model, pool, params, stats, env_state, obs, memory, episodes, key):
        def body(carry, _):
            s, o, mem, ep, done_sum, k = carry
            k, k_act, k_reset = jax.random.split(k, 3)
            x = features(o, mem)
            o_n = normalize(stats, x)
            mem_next, base = base_action(o, mem)
            mean = action_mean(params, o_n, base)
            noise = jax.random.normal(k_act, mean.shape, dtype)
            action = mean + jnp.exp(params["log_std"]) * noise
            logp = _log_prob(mean, params["log_std"], action)
            value = _mlp(params["critic"], o_n)[:, 0]
            env_action = action
            if modulated:  # with `modulate_hold`, between decisions a runner keeps its hold
                mem_next, env_action, action = modulated_control(action, o, mem)
            restart = reset_from_pool(model, pool, k_reset, n_env)
            r = autoreset_step(
                model,
                s,
                env_action,
                restart,
                integrator=integrator,
                first_integrator=first_integrator,
            )
            # Bootstrap through truncation (time limit), not through a fall.
            x_final = features(r.final_obs, mem_next)
            next_value = _mlp(params["critic"], normalize(stats, x_final))[:, 0]
            reward = training_reward(config, r.reward, r.final_obs, r.terminated, xp=jnp)
            ended = r.terminated | r.truncated

            ep, done_sum = track_episodes(
                ep, done_sum, r.reward, reward, ended, r.final_obs[:, PELVIS_X]
            )
            out = {
                "obs": x,
                "action": action,
                "logp": logp,
                "value": value,
                "reward": reward.astype(dtype),
                "terminated": r.terminated,
                "ended": ended,
                "next_value": next_value,
            }
            if residual and not modulated:
                out["base"] = base  # the loss needs it; a constant otherwise (`output_base`)
            if config.modulate_hold:
                out["decide"] = deciding(mem, xp=jnp)
            if residual:
                # A runner that was reset starts with a fresh walker memory.
                mem_next = jnp.where(ended[:, None], fresh_memory, mem_next)
            return (r.state, r.obs, mem_next, ep, done_sum, k), out

        carry = (env_state, obs, memory, episodes, no_episodes_finished(), key)
        (s, o, mem, ep, done_sum, key), traj = jax.lax.scan(body, carry, None, length=n_steps)
        return _strong(s), _strong(o), _strong(mem), _strong(ep), key, traj, done_sum

    def gae(traj):
        def body(carry, t):
            adv_next = carry
            not_term = 1.0 - t["terminated"]
            delta = t["reward"] + config.gamma * t["next_value"] * not_term - t["value"]
            # An episode boundary cuts the advantage chain (the next row is a new episode).
            adv = delta + config.gamma * config.gae_lambda * (1.0 - t["ended"]) * adv_next
            return adv, adv

        keys = ("reward", "terminated", "ended", "next_value", "value")
        _, adv = jax.lax.scan(
            body, jnp.zeros(n_env, dtype), {k: traj[k].astype(dtype) for k in keys}, reverse=True
        )
        return adv, adv + traj["value"]

    def loss_fn(params, stats, batch, actor_on):
        o_n = normalize(stats, batch["obs"])
        output = _mlp(params["actor"], o_n)
        mean = batch.get("base", output_base(config)) + output  # = action_mean(params, o_n, base)
        logp = _log_prob(mean, params["log_std"], batch["action"])
        # Only the samples where an action was drawn carry a policy gradient (all of them,
        # unless a `modulate_hold` runner was holding its modulation). A held sample's stored
        # log-probability is of a draw it did not use: its ratio is set to 1, since an
        # overflowing one would turn the zero weight into NaN.
        weight = batch.get("decide", jnp.ones_like(logp)).astype(logp.dtype)
        ratio = jnp.exp(jnp.where(weight > 0, logp - batch["logp"], 0.0))
        n_w = jnp.maximum(weight.sum(), 1.0)
        adv_mean = (weight * batch["adv"]).sum() / n_w
        adv_std = jnp.sqrt((weight * (batch["adv"] - adv_mean) ** 2).sum() / n_w)
        adv = (batch["adv"] - adv_mean) / (adv_std + 1e-8)
        pg = jnp.maximum(
            -adv * ratio, -adv * jnp.clip(ratio, 1 - config.clip_coef, 1 + config.clip_coef)
        )
        pg = (weight * pg).sum() / n_w
        value = _mlp(params["critic"], o_n)[:, 0]
        v_loss = 0.5 * jnp.mean((value - batch["ret"]) ** 2)
        entropy = jnp.sum(params["log_std"] + 0.5 * jnp.log(2 * jnp.pi * jnp.e))
        l2 = jnp.mean(jnp.sum(output**2, axis=-1))
        actor_loss = pg - config.ent_coef * entropy + config.residual_l2 * l2
        # actor_on = 0 during the critic warm-up: no gradient reaches the actor or log-std.
        total = actor_on * actor_loss + config.vf_coef * v_loss
        approx_kl = (weight * ((ratio - 1) - jnp.log(ratio))).sum() / n_w
        return total, (pg, v_loss, entropy, approx_kl)

    @engine_jit
    def update(params, opt, stats, traj, key, lr, actor_on):
        adv, ret = gae(traj)
        flat = {
            "obs": traj["obs"].reshape(-1, n_inputs),
            "action": traj["action"].reshape(-1, n_act),
            "logp": traj["logp"].reshape(-1),
            "adv": adv.reshape(-1),
            "ret": ret.reshape(-1),
        }
        if residual and not modulated:
            flat["base"] = traj["base"].reshape(-1, ACT_SIZE)
        if config.modulate_hold:
            flat["decide"] = traj["decide"].reshape(-1)
        n = n_env * n_steps
        mb = n // config.num_minibatches

        def epoch(carry, k):
            params, opt = carry
            perm = jax.random.permutation(k, n)

            def minibatch(carry, idx):
                params, opt = carry
                batch = jax.tree.map(lambda a: a[idx], flat)
                grads, aux = jax.grad(loss_fn, has_aux=True)(params, stats, batch, actor_on)
                params, opt = _adam_step(params, grads, opt, lr, config.max_grad_norm)
                return (params, opt), aux

            idxs = perm.reshape(config.num_minibatches, mb)
            (params, opt), aux = jax.lax.scan(minibatch, (params, opt), idxs)
            return (params, opt), aux

        keys = jax.random.split(key, config.update_epochs)
        (params, opt), aux = jax.lax.scan(epoch, (params, opt), keys)
        # The statistics of this iteration's inputs enter the next iteration's normalisation.
        stats = update_stats(stats, flat["obs"])
        return _strong(params), _strong(opt), _strong(stats), jax.tree.map(jnp.mean, aux)

    return rollout, update


# Fields that do not shape the compiled programs (seeds, budgets, the pool's contents and values
# passed as arguments), so a second `train` call in one process differing only in these reuses
# the compiled rollout and update.
RUNTIME_FIELDS = frozenset(
    {
        "total_steps",
        "learning_rate",
        "anneal_lr",
        "init_log_std",
        "seed",
        "difficulty",
        "max_obstacles",
        "time_budget_s",
        "checkpoint_every",
        "init_from",
        "algo",
    }
)


def _compile_key(config: PPOConfig) -> tuple:
    items = asdict(config)
    return tuple(
        (k, tuple(v) if isinstance(v, list) else v)
        for k, v in sorted(items.items())
        if k not in RUNTIME_FIELDS
    )


@lru_cache(maxsize=4)
def _cached_functions(key: tuple):
    return make_functions(PPOConfig(**{k: list(v) if isinstance(v, tuple) else v for k, v in key}))


# --- run directories --------------------------------------------------------------------------


def _flatten(params) -> dict[str, np.ndarray]:
    flat = {"log_std": np.asarray(params["log_std"])}
    for net in ("actor", "critic"):
        for i, layer in enumerate(params[net]):
            flat[f"{net}_{i}_w"] = np.asarray(layer["w"])
            flat[f"{net}_{i}_b"] = np.asarray(layer["b"])
    return flat


def _unflatten(data) -> dict:
    """Params pytree (numpy) from a `ppo_params.npz` mapping."""
    params: dict[str, Any] = {"log_std": np.asarray(data["log_std"])}
    for net in ("actor", "critic"):
        layers, i = [], 0
        while f"{net}_{i}_w" in data:
            layers.append({"w": np.asarray(data[f"{net}_{i}_w"]), "b": data[f"{net}_{i}_b"]})
            i += 1
        params[net] = layers
    return params


def save_params(path: Path, params, stats: ObsStats, **extra) -> None:
    """Write weights and observation statistics atomically (`atomic_files.replacing`), so
    a run killed mid-write still leaves the previous complete file."""
    with replacing(path) as tmp, tmp.open("wb") as fh:
        np.savez(
            fh,
            **_flatten(params),
            obs_mean=np.asarray(stats.mean),
            obs_var=np.asarray(stats.var),
            obs_count=np.asarray(stats.count),
            **{k: np.asarray(v) for k, v in extra.items()},
        )


def _run_config(run_dir: Path) -> PPOConfig:
    """The config of a saved run; runs from before `pelvis_relative` existed used raw inputs."""
    saved = read_run_config(run_dir)
    saved.setdefault("pelvis_relative", False)
    known = {f.name for f in fields(PPOConfig)}
    return PPOConfig(**{k: v for k, v in saved.items() if k in known})


def load_run(run_dir: str | Path) -> tuple[PPOConfig, dict, ObsStats]:
    """(config, params as numpy arrays, observation statistics) of a PPO run directory."""
    d = Path(run_dir)
    if not (d / PARAMS_FILE).is_file() or not (d / "config.json").is_file():
        raise ValueError(f"{d} is not a PPO run directory (needs config.json and {PARAMS_FILE})")
    with np.load(d / PARAMS_FILE) as data:
        params = _unflatten(data)
        stats = ObsStats(data["obs_mean"], data["obs_var"], data["obs_count"])
    return _run_config(d), params, stats


def _initial_weights(config: PPOConfig, key) -> tuple[dict, ObsStats | None]:
    """Fresh weights, or `config.init_from`'s weights and statistics cast to `config.dtype`."""
    import jax
    import jax.numpy as jnp

    fresh = init_params(key, config)
    if not config.init_from:
        return fresh, None
    prev_config, prev, stats = load_run(config.init_from)
    if prev_config.pelvis_relative != config.pelvis_relative:
        raise ValueError(
            f"init_from run {config.init_from} was trained with pelvis_relative="
            f"{prev_config.pelvis_relative}, this config has {config.pelvis_relative}"
        )
    shapes = jax.tree.map(lambda a: tuple(np.shape(a)), fresh)
    prev_shapes = jax.tree.map(lambda a: tuple(np.shape(a)), prev)
    if shapes != prev_shapes:
        raise ValueError(
            f"init_from run {config.init_from} has networks of another size: layers "
            f"{_describe(prev)} but hidden={config.hidden} needs {_describe(fresh)}"
        )
    dtype = jnp.dtype(config.dtype)
    params = jax.tree.map(lambda a: jnp.asarray(a, dtype), prev)
    stats = ObsStats(*(jnp.asarray(a, jnp.float64) for a in stats))
    return params, stats


def _describe(params) -> str:
    return ", ".join(
        f"{net}: " + " -> ".join(str(np.shape(layer["w"])) for layer in params[net])
        for net in ("actor", "critic")
    )


# Course seeds far from the evaluation seeds (1-10 in the README) so those stay unseen.
FIRST_COURSE_SEED = 100_000
COURSE_SEED_STRIDE = 10_000


def course_seeds(config: PPOConfig) -> range:
    """The seeds of the courses a run trains on (`course_pool_size` of them)."""
    first = FIRST_COURSE_SEED + config.seed * COURSE_SEED_STRIDE
    return range(first, first + config.course_pool_size)


# --- resuming a run ---------------------------------------------------------------------------

RESUME_STATE_FILE = "ppo_resume.npz"  # everything `train(resume=True)` continues from
RESUME_FORMAT = 1  # layout version of RESUME_STATE_FILE; a file of another version is refused
# The config fields a resumed run may change: its budgets. Every other field shapes what the
# run learns (or when it checkpoints), so a run resumed with another value would not continue it.
BUDGET_FIELDS = ("total_steps", "time_budget_s")
PROGRESS_FILE = "progress.csv"
PROGRESS_COLUMNS = (
    "iteration", "env_steps", "wall_s", "rollout_s", "update_s", "steps_per_s",
    "episodes", "episodes_ended", *EPISODE_COLUMNS, "learning_rate", "policy_loss",
    "value_loss", "entropy", "approx_kl",
)  # fmt: skip


class TrainState(NamedTuple):
    """The arrays one iteration hands the next (with `Position`, all a resumed run needs)."""

    params: Any
    opt: Any  # Adam's moments and step count
    stats: ObsStats
    key: Any  # the PRNG key the next rollout starts from
    env_state: Any  # EnvState of the num_envs runners
    obs: Any  # (num_envs, 41) their observations
    memory: Any  # (num_envs, n) their walkers' memories (n = 0 without a base policy)
    episodes: Episodes


@dataclass
class Position:
    """Where a run stands between two iterations (host values; RESUME_STATE_FILE's header)."""

    next_iteration: int = 0
    env_steps: int = 0  # environment steps so far, over all runners
    n_episodes: int = 0  # episodes finished so far
    last: dict = field(default_factory=dict)  # EPISODE_COLUMNS means of the latest that had any
    wall_s: float = 0.0  # s of wall time the run has taken so far, over all its invocations


def _leaf_array(leaf) -> np.ndarray:
    """A state leaf as numpy, dtype kept; a typed PRNG key as its key data (numpy has no key
    dtype)."""
    import jax

    if jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key):
        leaf = jax.random.key_data(leaf)
    return np.asarray(leaf)


def save_resume(path: Path, state, position: Position) -> None:
    """Write `state` (a pytree of arrays) and `position` atomically (`atomic_files.replacing`):
    the leaves in `jax.tree_util`'s order with their dtypes, and a JSON header with the format,
    the tree structure, the leaves' dtypes and the position."""
    import jax

    leaves, treedef = jax.tree_util.tree_flatten(state)
    header = {
        "format": RESUME_FORMAT,
        "treedef": str(treedef),
        "dtypes": [str(leaf.dtype) for leaf in leaves],
        **asdict(position),
    }
    arrays = {f"leaf_{i}": _leaf_array(leaf) for i, leaf in enumerate(leaves)}
    with replacing(path) as tmp, tmp.open("wb") as fh:
        np.savez(fh, header=np.asarray(json.dumps(header)), **arrays)


def load_resume(path: Path, like) -> tuple[Any, Position]:
    """(state, position) from a `save_resume` file. `like` is a freshly built state of the same
    run: the saved one must have its tree structure and each leaf its shape and dtype (a typed
    PRNG key comes back as a key of `like`'s kind). ValueError naming the file otherwise, or
    when it is damaged or of another format."""
    import jax
    import jax.numpy as jnp

    fresh, treedef = jax.tree_util.tree_flatten(like)
    try:
        if not zipfile.is_zipfile(path):  # numpy's own error would suggest unpickling it
            raise ValueError("not an .npz archive (cut short, or another kind of file)")
        with np.load(path, allow_pickle=False) as data:
            if "header" not in data.files:
                raise ValueError("an .npz archive without a header (another kind of file)")
            header = json.loads(str(data["header"]))
            if not isinstance(header, dict) or header.get("format") != RESUME_FORMAT:
                found = header.get("format") if isinstance(header, dict) else None
                raise ValueError(f"format {found!r}, this version reads {RESUME_FORMAT}")
            dtypes = [str(leaf.dtype) for leaf in fresh]
            if (
                header.get("treedef") != str(treedef)
                or header.get("dtypes") != dtypes
                or len(data.files) != len(fresh) + 1
            ):
                raise ValueError("its state is another run's (other arrays or dtypes)")
            arrays = [data[f"leaf_{i}"] for i in range(len(fresh))]
            position = Position(**{f.name: header[f.name] for f in fields(Position)})
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        raise ValueError(f"{path} is not a resume file of this PPO run: {exc}") from None
    counts = (position.next_iteration, position.env_steps, position.n_episodes)
    if (
        not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in counts)
        or not isinstance(position.last, dict)
        or not set(position.last) <= set(EPISODE_COLUMNS)
        or not isinstance(position.wall_s, int | float)
    ):
        raise ValueError(
            f"{path} is not a resume file of this PPO run: its position {asdict(position)}"
        )
    leaves = []
    for i, (array, leaf) in enumerate(zip(arrays, fresh, strict=True)):
        expected = _leaf_array(leaf)
        if array.shape != expected.shape or array.dtype != expected.dtype:
            raise ValueError(
                f"{path} is not a resume file of this PPO run: array {i} is {array.dtype} "
                f"{array.shape}, this run's is {expected.dtype} {expected.shape}"
            )
        restored = jnp.asarray(array)
        if jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key):
            restored = jax.random.wrap_key_data(restored, impl=jax.random.key_impl(leaf))
        leaves.append(restored)
    return jax.tree_util.tree_unflatten(treedef, leaves), position


def resume_config(run_dir: str | Path) -> PPOConfig:
    """The config of the PPO run in `run_dir` (its config.json), validated: what
    `train(..., resume=True)` continues with, with new BUDGET_FIELDS if wanted. ValueError
    naming config.json when it is missing, unreadable or not a valid PPO run's config."""
    config = _run_config(Path(run_dir))  # ValueError naming config.json: missing, not JSON
    try:
        if config.algo != "ppo":
            raise ValueError(f"algo is {config.algo!r}, not 'ppo'")
        config.validate()
    except (TypeError, ValueError) as exc:  # TypeError: a value of the wrong type
        raise ValueError(
            f"{Path(run_dir) / 'config.json'} is not a PPO run's config: {exc}"
        ) from None
    return config


def _write_config(out: Path, config: PPOConfig) -> None:
    write_json_object(out / "config.json", asdict(config))


def _check_resumable(out: Path, config: PPOConfig) -> None:
    """ValueError unless `out` holds a run `config` can continue: its config.json and
    RESUME_STATE_FILE, and a config equal to `config` outside BUDGET_FIELDS."""
    missing = [name for name in ("config.json", RESUME_STATE_FILE) if not (out / name).is_file()]
    if missing:
        raise ValueError(
            f"cannot resume {out}: it has no {' and no '.join(missing)} (a PPO run writes its "
            "state at each checkpoint, every checkpoint_every iterations, so a run stopped "
            "before its first checkpoint, or trained before resuming existed, cannot be "
            "resumed)"
        )
    check_same_settings(out, asdict(resume_config(out)), asdict(config), BUDGET_FIELDS)


def _keep_progress(path: Path, next_iteration: int) -> None:
    """Rewrite progress.csv (atomically) with only its complete rows of iterations before
    `next_iteration`: a run killed after its latest checkpoint logged iterations that the
    resumed run runs again (and may have left half a row)."""
    rows = []
    if path.is_file():
        with path.open(newline="") as fh:
            reader = csv.DictReader(fh)
            if reader.fieldnames not in (None, list(PROGRESS_COLUMNS)):
                raise ValueError(f"cannot resume: {path} has other columns than PPO writes")
            for row in reader:
                complete = None not in row and None not in row.values()
                it = row["iteration"]
                if complete and it.isdigit() and int(it) < next_iteration:
                    rows.append(row)
    with replacing(path) as tmp, tmp.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=PROGRESS_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)


def train(
    config: PPOConfig,
    out_dir: str | Path,
    progress: bool = True,
    on_iteration: Callable[[int, dict], None] | None = None,
    overwrite: bool = True,
    resume: bool = False,
) -> Path:
    """Train PPO on the JAX engine; write the run directory; returns `ppo_params.npz`.
    A previous run's files there are removed first with `overwrite`, else a folder that is not
    empty is refused.

    `on_iteration(iteration, row)` is called after each iteration's `progress.csv` row (and
    checkpoint, if any) is written.

    At each checkpoint RESUME_STATE_FILE gets the whole training state, and `resume` continues the
    run in `out_dir` from it as if it had never stopped (killed, out of time, or done with its
    total_steps): nothing there is removed (`overwrite` is ignored) and `init_from` is not read
    again. `config` must equal the run's (`resume_config`) except in BUDGET_FIELDS, which
    config.json then takes. total_steps counts the whole run, saved iterations included, so
    with `anneal_lr` the rest of the decay stretches over the new total (an extended run is
    then not the run that had that total from the start); time_budget_s counts this call's time
    only. progress.csv drops the rows of iterations after the checkpoint (they run again) and
    goes on; wall_s and the episode count continue. A run already at its total runs nothing and
    writes nothing.
    """
    import jax
    import jax.numpy as jnp
    from tqdm import tqdm

    from l2run.engines.jax.params import load_params
    from l2run.engines.jax.rollout import batch_observe, cast_floats, course_pool, reset_from_pool
    from l2run.train.walker import WalkerPolicy

    t_start = time.time()
    config.validate()
    out = Path(out_dir)
    if config.init_from and Path(config.init_from).resolve() == out.resolve():
        raise ValueError("init_from must be another run directory than out_dir")
    if resume:
        _check_resumable(out, config)
    dtype = jnp.dtype(config.dtype)
    key = jax.random.PRNGKey(config.seed)
    key, k_init, k_reset = jax.random.split(key, 3)
    if resume:  # the saved state holds the weights; fresh ones give its shapes
        params, stats = init_params(k_init, config), None
    else:
        params, stats = _initial_weights(config, k_init)  # before writing: fails on a bad init_from
    params = _strong(params)

    # What the rollout runs: a resumed residual run adds to its own copy of its walker (the
    # path its config names may be relative to wherever it was started, or gone).
    program = config
    if resume and config.base_policy:
        program = replace(config, base_policy=str(out / BASE_POLICY_FILE))
    base = load_base_params(program.base_policy) if program.base_policy else None
    if not resume:
        out = prepare_out_dir(out, overwrite)  # after every check that can refuse the run
        _write_config(out, config)
        if base is not None:  # the run directory alone must rebuild the policy
            WalkerPolicy(base, {"source": config.base_policy}).save(out / BASE_POLICY_FILE)
    model = cast_floats(load_params(), dtype)
    seeds = course_seeds(config)
    pool = course_pool(seeds, config.difficulty, config.max_obstacles)
    rollout, update = _cached_functions(_compile_key(program))

    opt = _adam_init(params)
    env_state = _strong(reset_from_pool(model, pool, k_reset, config.num_envs))
    obs = _strong(batch_observe(model, env_state))
    memory = (
        jnp.tile(run_memory(config, jnp), (config.num_envs, 1))
        if base is not None
        else jnp.zeros((config.num_envs, 0))
    ).astype(dtype)
    memory = _strong(memory)
    if stats is None:
        n_in = input_size(config)
        stats = ObsStats(
            jnp.zeros(n_in, jnp.float64),
            jnp.ones(n_in, jnp.float64),
            jnp.asarray(1e-4, jnp.float64),
        )
        stats = update_stats(stats, policy_inputs(config, obs, memory, xp=jnp))
    stats = _strong(stats)
    episodes = Episodes(
        jnp.zeros(config.num_envs, dtype),
        jnp.zeros(config.num_envs, dtype),
        jnp.zeros(config.num_envs, jnp.int32),
    )
    state = TrainState(params, opt, stats, key, env_state, obs, memory, episodes)
    position = Position()

    per_iter = config.num_envs * config.num_steps
    iterations = max(1, -(-config.total_steps // per_iter))
    path = out / PARAMS_FILE
    if resume:
        state, position = load_resume(out / RESUME_STATE_FILE, state)
        if position.next_iteration >= iterations:
            _report_line(
                f"{out} has run {position.next_iteration} iterations, total_steps "
                f"{config.total_steps} needs {iterations}: nothing to run",
                None,
            )
            return path
        _keep_progress(out / PROGRESS_FILE, position.next_iteration)
        _write_config(out, config)  # with the new budgets
    params, opt, stats, key, env_state, obs, memory, episodes = state
    start = position.next_iteration
    n_episodes = position.n_episodes
    last: dict[str, Any] = dict(position.last)  # means of the latest iteration with endings
    iter_s = 0.0  # duration of the latest iteration after this call's first (which compiles)
    with (out / PROGRESS_FILE).open("a" if resume else "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=PROGRESS_COLUMNS)
        if not resume:
            writer.writeheader()
        fh.flush()  # a run killed while the first iteration compiles still leaves the header
        bar = tqdm(
            range(start, iterations),
            desc="ppo",
            initial=start,
            total=iterations,
            disable=not progress,
        )
        for it in bar:
            t0 = time.time()
            lr = config.learning_rate * (1.0 - it / iterations if config.anneal_lr else 1.0)
            env_state, obs, memory, episodes, key, traj, done = rollout(
                model, pool, params, stats, env_state, obs, memory, episodes, key
            )
            jax.block_until_ready(traj["reward"])
            t1 = time.time()
            key, k_up = jax.random.split(key)
            actor_on = np.asarray(0.0 if it < config.critic_warmup else 1.0, dtype)
            params, opt, stats, aux = update(
                params, opt, stats, traj, k_up, np.asarray(lr, dtype), actor_on
            )
            host = jax.device_get({"aux": aux, "done": done})  # one transfer of scalars
            t2 = time.time()
            if it > start:
                iter_s = t2 - t0
            d = Finished(*(float(v) for v in host["done"]))
            n_episodes += int(d.count)
            if d.count:
                last = {
                    "mean_return": d.shaped_return / d.count,
                    "mean_raw_return": d.raw_return / d.count,
                    "mean_distance": d.distance / d.count,
                    "max_distance": d.max_distance,
                    "mean_length": d.length / d.count,
                }
            pg, v_loss, entropy, kl = (float(a) for a in host["aux"])
            env_steps = (it + 1) * per_iter
            row = {
                "iteration": it,
                "env_steps": env_steps,
                "wall_s": round(position.wall_s + t2 - t_start, 2),
                "rollout_s": round(t1 - t0, 3),
                "update_s": round(t2 - t1, 3),
                "steps_per_s": round(per_iter / (t2 - t0), 1),
                "episodes": n_episodes,
                "episodes_ended": int(d.count),
                **{k: last.get(k, "") for k in EPISODE_COLUMNS},
                "learning_rate": lr,
                "policy_loss": pg,
                "value_loss": v_loss,
                "entropy": entropy,
                "approx_kl": kl,
            }
            writer.writerow(row)
            fh.flush()
            elapsed = time.time() - t_start  # this call's: the budget is per invocation
            # Stop before an iteration that would run past the budget (the first iteration's
            # time includes compiling, so it does not predict the next one).
            out_of_time = bool(config.time_budget_s) and elapsed + iter_s >= config.time_budget_s
            final = it == iterations - 1 or out_of_time
            if final or (it + 1) % config.checkpoint_every == 0:
                save_params(path, params, stats, env_steps=env_steps, iteration=it)
                reached = Position(it + 1, env_steps, n_episodes, last, position.wall_s + elapsed)
                state = TrainState(params, opt, stats, key, env_state, obs, memory, episodes)
                save_resume(out / RESUME_STATE_FILE, state, reached)
                _report(row, bar if progress else None)
            if on_iteration is not None:
                on_iteration(it, row)
            if out_of_time:
                _report_line(
                    f"time budget {config.time_budget_s:g} s reached after {it + 1} iterations",
                    bar if progress else None,
                )
                break
        bar.close()
    return path


def _fmt(value: Any, spec: str) -> str:
    return "-" if value == "" else format(value, spec)


def _report(row: dict, bar) -> None:
    _report_line(
        f"checkpoint it {row['iteration']} | {row['env_steps']} steps | "
        f"{row['steps_per_s']:.0f} steps/s | raw return {_fmt(row['mean_raw_return'], '.3f')} | "
        f"distance {_fmt(row['mean_distance'], '.3f')} m | "
        f"length {_fmt(row['mean_length'], '.1f')}",
        bar,
    )


def _report_line(line: str, bar) -> None:
    if bar is not None:
        bar.write(line, file=sys.stdout)
    else:
        print(line)
    sys.stdout.flush()


class PPOPolicy:
    """A trained PPO run as an evaluation policy: deterministic mean excitations (numpy).

    Applies the run's input transform (`pelvis_relative`) and normalisation, so it acts in
    either engine on the raw 41-value observation. A residual run (`base_policy`) adds its
    output to the excitations of the walker saved in the run directory, which keeps its own
    memory between steps (hence `reset` at every episode start); a modulation run moves that
    walker's parameters by its output instead (`modulate`).
    """

    def __init__(self, run_dir: str | Path):
        self.config, params, stats = load_run(run_dir)
        self.actor = [(layer["w"], layer["b"]) for layer in params["actor"]]
        self.mean, self.var = np.asarray(stats.mean), np.asarray(stats.var)
        self.base = None
        if self.config.base_policy:
            from l2run.train.walker import WalkerPolicy

            base_file = Path(run_dir) / BASE_POLICY_FILE
            if not base_file.is_file():
                raise ValueError(f"residual PPO run {run_dir} lacks its {BASE_POLICY_FILE}")
            self.base = WalkerPolicy.load(base_file)
        self.matrix = modulation_matrix(self.config) if self.config.modulate else None
        self.held = np.zeros(len(self.config.modulate))  # `modulate_hold`: what it holds

    def wrap(self, env):
        return env

    def reset(self) -> None:
        if self.base is not None:
            self.base.reset()
        self.held = np.zeros_like(self.held)

    def act(self, obs: np.ndarray) -> np.ndarray:
        obs = np.asarray(obs, dtype=np.float64)
        if obs.shape != (OBS_SIZE,):
            raise ValueError(f"observation must have shape ({OBS_SIZE},), got {obs.shape}")
        # The inputs read the walker's memory before its step, as in training.
        memory = self.base.memory if self.base else None
        if self.config.modulate_hold:
            memory = np.concatenate([memory, self.held])
        x = policy_inputs(self.config, obs, memory)
        x = np.clip((x - self.mean) / np.sqrt(self.var + 1e-8), -10.0, 10.0)
        for w, b in self.actor[:-1]:
            x = np.tanh(x @ w + b)
        w, b = self.actor[-1]
        output = x @ w + b
        if self.matrix is not None:
            new_memory, excitation, self.held = steer(
                self.config, self.base.params, self.matrix, memory, obs, output
            )
            self.base.memory = new_memory[: len(self.base.memory)]
            return excitation
        base = self.base.act(obs) if self.base else RESTING_EXCITATION
        return np.clip(base + output, 0.0, 1.0)
