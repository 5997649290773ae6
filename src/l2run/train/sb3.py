"""DDPG / TD3 / SAC with stable-baselines3 on `l2run/Run-v0` (either engine).

The default DDPG configuration is the seed's keras-rl example (osim-rl `scripts/example.py`):
actor 3 x 32 ReLU, critic 3 x 64 ReLU, gamma 0.99, Adam lr 1e-3, soft target updates
tau 1e-3, Ornstein-Uhlenbeck exploration (theta 0.15, sigma 0.2), replay memory 100 000,
batch 32, 100 warm-up steps. TD3 and SAC use the same network sizes so runs compare.

A run directory holds `config.json` (everything needed to rebuild the env and load the model),
`model.zip`, `checkpoints/` and `tb/` (TensorBoard logs: `tensorboard --logdir DIR/tb`). With
each checkpoint come `replay_buffer.pkl` and `resume.json` (which checkpoint goes with that
buffer), so `train(..., resume=True)` (`l2run train --resume DIR`) continues a run that was
stopped, or extends one that finished.
"""

from __future__ import annotations

import shutil
import time
import zipfile
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np

from l2run.atomic_files import replacing
from l2run.course import check_max_obstacles
from l2run.env.runenv import check_seed
from l2run.train.json_files import write_json_object
from l2run.train.resume_settings import check_same_settings
from l2run.train.run_dir import prepare_out_dir, read_run_config

ALGOS = ("ddpg", "td3", "sac")
ENV_ID = "l2run/Run-v0"
CHECKPOINTS = "checkpoints"  # the run's folder of checkpoints (and the latest replay buffer)
REPLAY_BUFFER_PREFIX = "replay_buffer_"  # + agent steps + "_steps.pkl", in CHECKPOINTS
RESUME_RECORD_FILE = "resume.json"  # see write_resume_record
FINAL_MODEL_FILE = "model.zip"
TRAIN_META_FILE = "train_meta.json"
# Fields of a run's config a resumed run may change: its budget and how it reports.
RESUMABLE_CHANGES = ("steps", "progress_bar")

# The seed's keras-rl DDPG example, transcribed.
SEED_DDPG = {
    "actor_layers": [32, 32, 32],
    "critic_layers": [64, 64, 64],
    "gamma": 0.99,
    "learning_rate": 1e-3,
    "tau": 1e-3,
    "buffer_size": 100_000,
    "batch_size": 32,
    "learning_starts": 100,
    "ou_theta": 0.15,
    "ou_sigma": 0.2,
}


@dataclass
class TrainConfig:
    """Everything a training run depends on; saved as `config.json` next to the model."""

    algo: str = "ddpg"
    engine: str = "opensim"
    difficulty: int = 0
    steps: int = 100_000
    seed: int = 0
    max_obstacles: int = 3
    hyper: dict = field(default_factory=lambda: dict(SEED_DDPG))
    wrappers: dict = field(default_factory=dict)  # {name: kwargs}, see l2run.train.wrappers
    checkpoint_every: int = 10_000
    progress_bar: bool = True
    # One thread: these networks are tiny and updated every step, and on a shared CPU torch's
    # spinning worker threads made each update ~50x slower (measured here, load 7 on 2 cores).
    torch_threads: int = 1

    def validate(self) -> None:
        if self.algo not in ALGOS:
            raise ValueError(f"algo must be one of {ALGOS}, got {self.algo!r}")
        if self.engine not in ("opensim", "jax"):
            raise ValueError(f"engine must be 'opensim' or 'jax', got {self.engine!r}")
        if self.difficulty not in (0, 1, 2):
            raise ValueError(f"difficulty must be 0, 1 or 2, got {self.difficulty!r}")
        if self.steps < 1:
            raise ValueError(f"steps must be >= 1, got {self.steps}")
        check_seed(self.seed, optional=False)
        check_max_obstacles(self.max_obstacles)
        every = self.checkpoint_every
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise ValueError(f"checkpoint_every must be an int >= 1 (steps), got {every!r}")


def make_env(
    engine: str,
    difficulty: int,
    max_obstacles: int = 3,
    wrappers: dict | None = None,
    evaluation: bool = False,
):
    """`l2run/Run-v0` at a fixed difficulty with the requested wrappers (see `apply_wrappers`)."""
    import gymnasium as gym

    import l2run  # noqa: F401  registers the gymnasium id
    from l2run.train.wrappers import FixedDifficulty, apply_wrappers

    env = gym.make(ENV_ID, engine=engine, max_obstacles=max_obstacles)
    env = FixedDifficulty(env, difficulty)
    return apply_wrappers(env, wrappers, evaluation=evaluation)


def _algo_class(name: str):
    from stable_baselines3 import DDPG, SAC, TD3

    return {"ddpg": DDPG, "td3": TD3, "sac": SAC}[name]


def build_model(config: TrainConfig, env, tensorboard_log: str | None):
    """The SB3 model for `config` (network sizes and optimiser from `config.hyper`)."""
    import torch
    from stable_baselines3.common.noise import OrnsteinUhlenbeckActionNoise

    h = {**SEED_DDPG, **config.hyper}
    n_actions = env.action_space.shape[0]
    kwargs = dict(
        policy="MlpPolicy",
        env=env,
        learning_rate=h["learning_rate"],
        gamma=h["gamma"],
        tau=h["tau"],
        buffer_size=h["buffer_size"],
        batch_size=h["batch_size"],
        learning_starts=h["learning_starts"],
        seed=config.seed,
        verbose=0,
        tensorboard_log=tensorboard_log,
        policy_kwargs={
            "net_arch": {"pi": h["actor_layers"], "qf": h["critic_layers"]},
            "activation_fn": torch.nn.ReLU,
        },
    )
    if config.algo in ("ddpg", "td3"):
        # keras-rl's random process: OU noise on the action (actions live in [0, 1]).
        kwargs["action_noise"] = OrnsteinUhlenbeckActionNoise(
            mean=np.zeros(n_actions),
            sigma=h["ou_sigma"] * np.ones(n_actions),
            theta=h["ou_theta"],
        )
    return _algo_class(config.algo)(**kwargs)


class _ResumableCheckpoints:
    """Every `every` agent steps: the model in `checkpoints/`, then the replay buffer beside it
    under a name of its own, then `resume.json` naming both, each written whole before the next
    starts; the previous buffer is removed only after that. So a run killed at any moment leaves
    a resume record whose checkpoint and buffer go together."""

    def __init__(self, out: Path, algo: str, every: int, wall_s: float = 0.0) -> None:
        self.out, self.algo, self.every = out, algo, every
        self.wall_before, self.t0 = wall_s, time.time()

    def callback(self):
        from stable_baselines3.common.callbacks import BaseCallback

        outer = self

        class Callback(BaseCallback):
            def _on_step(self) -> bool:
                if self.num_timesteps % outer.every == 0:
                    name = f"{CHECKPOINTS}/{outer.algo}_{self.num_timesteps}_steps.zip"
                    outer.save(self.model, name, save_model=True)
                return True

        return Callback()

    def wall_s(self) -> float:
        """Wall seconds of the run so far, earlier invocations included."""
        return self.wall_before + time.time() - self.t0

    def save(self, model, name: str, save_model: bool) -> None:
        """Save `model` as `name` (relative to the run) unless it is there already, then its
        replay buffer and the resume record."""
        if save_model:
            with replacing(self.out / name) as tmp:
                model.save(tmp)
        buffer = f"{CHECKPOINTS}/{REPLAY_BUFFER_PREFIX}{model.num_timesteps}_steps.pkl"
        with replacing(self.out / buffer) as tmp:
            model.save_replay_buffer(tmp)
        write_resume_record(self.out, name, buffer, int(model.num_timesteps), self.wall_s())
        for old in (self.out / CHECKPOINTS).glob(f"{REPLAY_BUFFER_PREFIX}*_steps.pkl"):
            if old.name != Path(buffer).name:  # no record names it any more
                old.unlink()


def write_resume_record(
    out: Path, checkpoint: str, buffer: str, timesteps: int, wall_s: float
) -> None:
    """`resume.json`: the model and replay buffer (paths in the run) a resumed run starts from,
    the agent steps they hold and the run's wall seconds so far."""
    record = {
        "checkpoint": checkpoint,
        "replay_buffer": buffer,
        "timesteps": timesteps,
        "wall_s": round(wall_s, 1),
    }
    write_json_object(out / RESUME_RECORD_FILE, record)


def train(
    config: TrainConfig, out_dir: str | Path, overwrite: bool = True, resume: bool = False
) -> Path:
    """Train and save to `out_dir`; returns the path of the saved model. A previous run's files
    there are removed first with `overwrite`, else a folder that is not empty is refused.

    `resume`: continue the run in `out_dir` from its latest checkpoint (or its final model)
    with its replay buffer, until `config.steps` agent steps in all (a run already there is
    only finished: its checkpoint becomes model.zip if it stopped before writing that);
    `config` must be the run's own (`resume_config`) apart from `RESUMABLE_CHANGES`. The
    environment starts a fresh episode (the one under way when the run stopped is lost, as are
    the exploration noise's state and the steps after the checkpoint) with courses drawn from a
    seed moved on by the steps taken, so the resumed part does not replay the first courses.
    """
    import torch
    from stable_baselines3.common.monitor import Monitor

    config.validate()
    torch.set_num_threads(max(1, config.torch_threads))
    out = Path(out_dir)
    record = _resume_record(out, config) if resume else None
    if record is not None and record["timesteps"] >= config.steps:
        return _finish(out, record)
    inner = make_env(config.engine, config.difficulty, config.max_obstacles, config.wrappers)
    if record is None:
        out = prepare_out_dir(out_dir, overwrite)  # after every check that can refuse the run
    # A resumed run appends to the episode log (Monitor would truncate it).
    env = Monitor(inner, str(out / "monitor.csv"), override_existing=record is None)
    if record is None:
        model = build_model(config, env, tensorboard_log=str(out / "tb"))
        saver = _ResumableCheckpoints(out, config.algo, config.checkpoint_every)
    else:
        model = load_model(config.algo, out / record["checkpoint"], env=env)
        load_replay_buffer(model, out / record["replay_buffer"])
        model.tensorboard_log = str(out / "tb")
        # The saved last observation belongs to the stopped run's environment: start afresh.
        model._last_obs = None
        model.set_random_seed(config.seed + int(model.num_timesteps))
        saver = _ResumableCheckpoints(
            out, config.algo, config.checkpoint_every, wall_s=float(record["wall_s"])
        )
    write_json_object(out / "config.json", asdict(config))
    model.learn(
        total_timesteps=config.steps - int(model.num_timesteps),
        callback=saver.callback(),
        progress_bar=config.progress_bar,
        tb_log_name=config.algo,
        reset_num_timesteps=record is None,
    )
    path = out / FINAL_MODEL_FILE
    with replacing(path) as tmp:
        model.save(tmp)
    saver.save(model, FINAL_MODEL_FILE, save_model=False)
    write_json_object(
        out / TRAIN_META_FILE,
        {"wall_s": round(saver.wall_s(), 1), "timesteps": int(model.num_timesteps)},
    )
    env.close()
    return path


def _finish(out: Path, record: dict) -> Path:
    """A run whose budget is spent: write nothing, unless it stopped between its last
    checkpoint and its model.zip, which its checkpoint then becomes (with the resume record
    and train_meta.json that the end of `train` writes)."""
    path = out / FINAL_MODEL_FILE
    if record["checkpoint"] == FINAL_MODEL_FILE and path.is_file():
        return path
    with replacing(path) as tmp:
        shutil.copyfile(out / record["checkpoint"], tmp)
    steps, wall_s = record["timesteps"], record["wall_s"]
    write_resume_record(out, FINAL_MODEL_FILE, record["replay_buffer"], steps, wall_s)
    write_json_object(out / TRAIN_META_FILE, {"wall_s": wall_s, "timesteps": steps})
    return path


def load_replay_buffer(model, path: Path) -> None:
    """Load the replay buffer at `path` into `model`; ValueError naming a damaged file."""
    try:
        model.load_replay_buffer(path)
    except Exception as exc:  # noqa: BLE001 - unpickling fails in many ways
        raise ValueError(
            f"{path} is not a readable replay buffer: {type(exc).__name__}: {exc}"
        ) from None


def resume_config(run_dir: str | Path) -> TrainConfig:
    """The saved, validated config of an SB3 run folder (ValueError naming the file when it
    is missing or not an SB3 run's); `resume` continues the run with it."""
    d = Path(run_dir)
    if not (d / "config.json").is_file():
        raise ValueError(f"{d} is not a training run directory (no config.json)")
    raw = read_run_config(d)
    known = {f.name for f in fields(TrainConfig)}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ValueError(
            f"{d / 'config.json'} has unknown keys {unknown}; an SB3 run's are {sorted(known)}"
        )
    config = TrainConfig(**raw)
    config.validate()
    return config


def _resume_record(out: Path, config: TrainConfig) -> dict:
    """The run's resume record, checked against `config` and the files it names."""
    saved = resume_config(out)
    check_same_settings(out, asdict(saved), asdict(config), RESUMABLE_CHANGES)
    where = out / RESUME_RECORD_FILE
    if not where.is_file():
        raise ValueError(
            f"{out} has no {RESUME_RECORD_FILE}: it is written with each checkpoint (every "
            f"{saved.checkpoint_every} steps) and at the end, so a run stopped before its first "
            "checkpoint, or trained before resuming existed, cannot be resumed"
        )
    from l2run.train.json_files import read_json_object

    record = read_json_object(where)
    names = [record.get("checkpoint"), record.get("replay_buffer")]
    steps, wall_s = record.get("timesteps"), record.get("wall_s")
    if (
        not all(isinstance(n, str) and _inside_run(n) for n in names)
        or isinstance(steps, bool)
        or not isinstance(steps, int)
        or isinstance(wall_s, bool)
        or not isinstance(wall_s, int | float)
    ):
        raise ValueError(
            f"{where} is not a resume record (checkpoint and replay_buffer: paths inside the "
            "run; timesteps: an int; wall_s: a number)"
        )
    for name in names:
        if not (out / name).is_file():
            raise ValueError(f"{where} names {name}, which is missing from {out}")
    return record


def load_run(model_dir: str | Path, model_file: str | Path | None = None):
    """(config, model) of a run directory written by `train`; `model_file` (e.g. one of its
    `checkpoints/*.zip`) in place of its `model.zip`."""
    d = Path(model_dir)
    config = resume_config(d)
    model_path = d / FINAL_MODEL_FILE if model_file is None else Path(model_file)
    if not model_path.is_file():
        raise ValueError(f"{d} has no {model_path.name}")
    return config, load_model(config.algo, model_path)


def _inside_run(name: str) -> bool:
    """Whether `name` is a relative path that stays inside the run's folder."""
    path = Path(name)
    return not path.is_absolute() and ".." not in path.parts


def load_model(algo: str, path: Path, env=None):
    """The `algo` model saved at `path` (given `env` to go on training); ValueError when it
    holds another algorithm's model."""
    try:
        return _algo_class(algo).load(str(path), env=env, device="cpu")
    except (AttributeError, KeyError, TypeError, RuntimeError, zipfile.BadZipFile) as exc:
        raise ValueError(
            f"{path} is not a {algo} model (the algo its config.json names): "
            f"{type(exc).__name__}: {exc}"
        ) from None


class SB3Policy:
    """A trained SB3 model as an evaluation policy: its wrappers plus deterministic actions."""

    def __init__(self, model_dir: str | Path, model_file: str | Path | None = None):
        import torch

        self.config, self.model = load_run(model_dir, model_file)
        torch.set_num_threads(max(1, self.config.torch_threads))

    def wrap(self, env):
        from l2run.train.wrappers import apply_wrappers

        return apply_wrappers(env, self.config.wrappers, evaluation=True)

    def reset(self) -> None:
        pass

    def act(self, obs: np.ndarray) -> np.ndarray:
        action, _ = self.model.predict(np.asarray(obs, dtype=np.float32), deterministic=True)
        return action
