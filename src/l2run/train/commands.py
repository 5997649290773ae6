"""`l2run train | test | evaluate | demo`: training, testing and evaluating runners."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

TRAIN_ALGOS = ("ddpg", "td3", "sac", "ppo", "gait")


def train(
    algo: Annotated[
        str,
        typer.Option(
            help="ddpg | td3 | sac (stable-baselines3), ppo (JAX vector env), "
            "gait (CMA-ES on the periodic gait controller)."
        ),
    ] = "ddpg",
    engine: Annotated[str, typer.Option(help="Physics engine: opensim or jax.")] = "opensim",
    steps: Annotated[
        int, typer.Option(min=1, help="Budget of environment steps (0.01 s each).")
    ] = 100_000,
    difficulty: Annotated[
        int, typer.Option(help="0: flat, 1: obstacles, 2: obstacles + psoas.")
    ] = 0,
    out: Annotated[Path, typer.Option(help="Output directory.")] = Path("runs/run"),
    seed: Annotated[int, typer.Option(help="Seed: network init, exploration, courses.")] = 0,
    max_obstacles: Annotated[int, typer.Option(help="Obstacles per course.")] = 3,
    config: Annotated[
        Path | None,
        typer.Option(
            help="JSON overrides: {'hyper': {...}, 'wrappers': {...}} (SB3), SearchConfig "
            "fields (gait) or PPOConfig fields (ppo)."
        ),
    ] = None,
) -> None:
    """Train a controller and save it to OUT (see README, section Training)."""
    if algo not in TRAIN_ALGOS:
        raise typer.BadParameter(f"algo must be one of {', '.join(TRAIN_ALGOS)}")
    overrides = json.loads(config.read_text()) if config else {}
    if algo == "gait":
        from l2run.train.gait_search import SearchConfig, runenv_episode_fn, search

        cfg = SearchConfig(
            max_env_steps=steps, seed=seed, difficulty=difficulty, engine=engine, **overrides
        )
        best = search(runenv_episode_fn(engine, difficulty, max_obstacles), cfg, out)
        typer.echo(f"best parameters written to {out / 'best.json'} ({len(best)} values)")
        return
    if algo == "ppo":
        from l2run.train.ppo_jax import PPOConfig
        from l2run.train.ppo_jax import train as ppo_train

        if engine != "jax":
            raise typer.BadParameter("ppo trains on the JAX engine's vector env: --engine jax")
        ppo_train(PPOConfig(total_steps=steps, seed=seed, difficulty=difficulty, **overrides), out)
        return
    from l2run.train.sb3 import TrainConfig
    from l2run.train.sb3 import train as sb3_train

    cfg = TrainConfig(
        algo=algo,
        engine=engine,
        steps=steps,
        difficulty=difficulty,
        seed=seed,
        max_obstacles=max_obstacles,
    )
    cfg.hyper.update(overrides.get("hyper", {}))
    cfg.wrappers = overrides.get("wrappers", {})
    try:
        path = sb3_train(cfg, out)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    typer.echo(f"model saved to {path}")
