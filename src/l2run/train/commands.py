"""`l2run train | test | evaluate | demo`: training, testing and evaluating runners."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

TRAIN_ALGOS = ("ddpg", "td3", "sac", "ppo", "gait", "walker", "cruiser")
SEARCH_ALGOS = ("gait", "walker", "cruiser")  # hand-designed controllers tuned by CMA-ES


def train(
    algo: Annotated[
        str,
        typer.Option(
            help="ddpg | td3 | sac (stable-baselines3), ppo (JAX vector env), "
            "gait (CMA-ES on the periodic gait controller), walker (CMA-ES on the "
            "contact-driven balance controller), cruiser (CMA-ES on the walker with a second "
            "gait once the obstacles are behind it)."
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
            "fields (gait, walker, cruiser) or PPOConfig fields (ppo)."
        ),
    ] = None,
    init: Annotated[
        Path | None,
        typer.Option(
            help="gait/walker/cruiser only: start the search from this .json (e.g. best.json; "
            "a walker file starts a cruiser whose cruise gait is that walker's)."
        ),
    ] = None,
) -> None:
    """Train a controller and save it to OUT (see README, section Training)."""
    if algo not in TRAIN_ALGOS:
        raise typer.BadParameter(f"algo must be one of {', '.join(TRAIN_ALGOS)}")
    overrides = json.loads(config.read_text()) if config else {}
    if algo in SEARCH_ALGOS:
        from l2run.train import gait_search as gs

        options = {"controller": algo, **overrides}
        if options.get("max_obstacles", max_obstacles) != max_obstacles:
            raise typer.BadParameter(
                "max_obstacles in the JSON config differs from --max-obstacles; pass one"
            )
        options["max_obstacles"] = max_obstacles
        cfg = gs.SearchConfig(
            max_env_steps=steps, seed=seed, difficulty=difficulty, engine=engine, **options
        )
        population = gs.population_fn(cfg)
        x0 = None
        if init is not None:
            x0 = gs.start_params(init, cfg.controller)
        best = gs.search(population, cfg, out, x0=x0)
        typer.echo(f"best parameters written to {out / 'best.json'} ({len(best)} values)")
        return
    if algo == "ppo":
        from l2run.train.ppo_jax import PPOConfig
        from l2run.train.ppo_jax import train as ppo_train

        if engine != "jax":
            raise typer.BadParameter("ppo trains on the JAX engine's vector env: --engine jax")
        options = {
            "total_steps": steps,
            "seed": seed,
            "difficulty": difficulty,
            "max_obstacles": max_obstacles,
            "algo": "ppo",
        }
        # A previous run's config.json may be reused as --config: keys the command line also
        # sets must agree with it (no silent winner).
        clash = [k for k in options if k in overrides and overrides[k] != options[k]]
        if clash:
            raise typer.BadParameter(
                f"{', '.join(clash)} in the JSON config differ from the command line "
                "(--steps sets total_steps); remove them from the JSON or pass equal values",
                param_hint="--config",
            )
        try:
            cfg = PPOConfig(**{**overrides, **options})
        except TypeError as exc:
            raise typer.BadParameter(
                f"not a PPOConfig field: {exc}", param_hint="--config"
            ) from exc
        try:
            path = ppo_train(cfg, out)
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from exc
        typer.echo(f"model saved to {path}")
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


def _print_results(results, title: str) -> None:
    from rich.console import Console
    from rich.table import Table

    from l2run.train.evaluate import summary

    table = Table(title=title)
    for col in ("seed", "distance (m)", "reward", "steps", "fell"):
        table.add_column(col, justify="right")
    for r in results:
        fell = "yes" if r.fell else "no"
        if r.error:
            fell += f" ({r.error})"
        table.add_row(str(r.seed), f"{r.distance:.3f}", f"{r.reward:.3f}", str(r.steps), fell)
    s = summary(results)
    console = Console()
    console.print(table)
    console.print(
        f"mean distance {s['mean_distance']:.3f} m (min {s['min_distance']:.3f}, "
        f"max {s['max_distance']:.3f}); falls {s['falls']}/{s['episodes']}"
    )


def test(
    model: Annotated[
        str,
        typer.Option(
            help="A training run directory (l2run train --out), a gait/walker/cruiser/planner "
            ".json, or 'pretrained'."
        ),
    ],
    visualize: Annotated[bool, typer.Option(help="Show the live viewer.")] = False,
    episodes: Annotated[int, typer.Option(min=1, help="Episodes to run.")] = 1,
    engine: Annotated[str, typer.Option(help="Physics engine: opensim or jax.")] = "opensim",
    difficulty: Annotated[int, typer.Option(help="0, 1 or 2.")] = 2,
    seed: Annotated[int, typer.Option(help="Seed of the first episode's course.")] = 1,
    max_steps: Annotated[
        int, typer.Option(min=1, max=1000, help="Most steps per episode (0.01 s each).")
    ] = 1000,
) -> None:
    """Run a trained controller and print the distance of each episode (the seed's --test)."""
    from l2run.train.evaluate import load_policy, run_episode

    try:
        load_policy(model)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--model") from exc
    for k in range(episodes):
        r = run_episode(
            model,
            engine,
            difficulty,
            seed + k,
            render_mode="human" if visualize else None,
            max_steps=max_steps,
        )
        typer.echo(
            f"episode {k + 1}: distance {r.distance:.3f} m, reward {r.reward:.3f}, "
            f"{r.steps} steps, {'fell' if r.fell else 'did not fall'}"
        )


def evaluate(
    policy: Annotated[
        str,
        typer.Option(
            help="'pretrained', 'zero', a gait/walker/cruiser/planner .json or a training run "
            "directory."
        ),
    ] = "pretrained",
    engine: Annotated[str, typer.Option(help="Physics engine: opensim or jax.")] = "opensim",
    difficulty: Annotated[int, typer.Option(help="0, 1 or 2.")] = 2,
    seeds: Annotated[str, typer.Option(help="Seeds, e.g. '1-10', '3' or '1,4,7'.")] = "1-10",
    max_obstacles: Annotated[int, typer.Option(help="Obstacles per course.")] = 3,
    workers: Annotated[int, typer.Option(min=1, help="Parallel worker processes.")] = 1,
    ray: Annotated[
        str | None,
        typer.Option(help="Run on a Ray cluster at this address ('local': start one here)."),
    ] = None,
    json_out: Annotated[
        bool, typer.Option("--json", help="Print a JSON object instead of a table.")
    ] = False,
    integrator: Annotated[
        str | None,
        typer.Option(help="JAX engine only: its scheme, e.g. 'rk4:20' (default imex_stiff:10)."),
    ] = None,
) -> None:
    """One episode per seed; a table (or JSON: `episodes` with seed, distance, reward, steps,
    fell) of the environment's own distance and reward."""
    from l2run.train.evaluate import evaluate as run_eval
    from l2run.train.evaluate import parse_seeds, to_json

    try:
        seed_list = parse_seeds(seeds)
        results = run_eval(
            policy,
            engine,
            difficulty,
            seed_list,
            max_obstacles=max_obstacles,
            workers=workers,
            ray_address=ray,
            progress=not json_out,
            integrator=integrator,
        )
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    if json_out:
        typer.echo(
            to_json(
                results,
                policy=policy,
                engine=engine,
                difficulty=difficulty,
                max_obstacles=max_obstacles,
                integrator=integrator,
            )
        )
    else:
        _print_results(results, f"{policy} on {engine}, difficulty {difficulty}")


def demo(
    seeds: Annotated[str, typer.Option(help="Seeds of the courses, e.g. '1-3'.")] = "1-3",
    video: Annotated[
        Path | None,
        typer.Option(help="Video of the first episode (.mp4/.gif), if l2run.render.video exists."),
    ] = Path("demo.mp4"),
    workers: Annotated[int, typer.Option(min=1, help="Parallel worker processes.")] = 1,
) -> None:
    """The pretrained runner at difficulty 2 in the OpenSim engine: distances, and a video."""
    import importlib.util
    import tempfile

    from l2run.train.evaluate import evaluate as run_eval
    from l2run.train.evaluate import parse_seeds, run_episode

    try:
        seed_list = parse_seeds(seeds)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--seeds") from exc
    can_video = video is not None and importlib.util.find_spec("l2run.render.video") is not None
    results = []
    if can_video:
        from l2run.render.recording import load_recording
        from l2run.render.video import write_video

        with tempfile.TemporaryDirectory() as tmp:
            npz = Path(tmp) / "demo.npz"
            results.append(run_episode("pretrained", "opensim", 2, seed_list[0], record=str(npz)))
            write_video(load_recording(npz), video)
        seed_list = seed_list[1:]
    results += run_eval("pretrained", "opensim", 2, seed_list, workers=workers, progress=True)
    _print_results(results, "pretrained runner, OpenSim engine, difficulty 2")
    if can_video:
        typer.echo(f"video of seed {results[0].seed}: {video}")
