"""`l2run train | test | evaluate | demo`: training, testing and evaluating runners."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

TRAIN_ALGOS = ("ddpg", "td3", "sac", "ppo", "gait", "walker", "cruiser")
SEARCH_ALGOS = ("gait", "walker", "cruiser")  # hand-designed controllers tuned by CMA-ES
SB3_CONFIG_KEYS = ("hyper", "wrappers", "checkpoint_every")


def _require_train_extra(modules: tuple[str, ...], what: str) -> None:
    """A usage error when `what` (e.g. "--algo ddpg") needs a module the 'train' extra
    installs."""
    from l2run.train.evaluate import require_train_extra

    try:
        require_train_extra(modules, what)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


def load_config(path: Path | None) -> dict:
    """The JSON object in `path` ({} without one); a usage error for a missing file, invalid
    JSON or anything but an object."""
    if path is None:
        return {}
    from l2run.train.json_files import read_json_object

    try:
        return read_json_object(path)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--config") from None


def _check_out(out: Path, overwrite: bool) -> None:
    """A usage error for an --out that is a file, or not empty without --overwrite."""
    from l2run.train.run_dir import check_out_dir

    try:
        check_out_dir(out, overwrite)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--out") from None


def train(
    ctx: typer.Context,
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
        int,
        typer.Option(
            min=1,
            help="Budget of environment steps (0.01 s each); ddpg/td3/sac count the agent's "
            "steps (k env steps each with action_repeat k); a search stops after the "
            "generation that reaches it.",
        ),
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
            help="JSON overrides: {'hyper': {...}, 'wrappers': {...}, 'checkpoint_every': "
            "steps} (SB3), SearchConfig "
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
    overwrite: Annotated[
        bool,
        typer.Option(
            "--overwrite",
            help="Let OUT hold files: a previous run's files there (config.json, model.zip, "
            "checkpoints/, ppo_params.npz, best.json, ...) are removed once every option is "
            "checked; other files are left alone.",
        ),
    ] = False,
    resume: Annotated[
        Path | None,
        typer.Option(
            help="Continue the run in this folder from its last checkpoint (a search: its "
            "last generation) with its own settings, until --steps in all (default: the "
            "run's own budget); no other option may be given.",
        ),
    ] = None,
) -> None:
    """Train a controller and save it to OUT (see README, section Training). OUT must be new or
    empty unless --overwrite is given; --resume RUN continues a stopped or finished run."""
    if resume is not None:
        _resume(ctx, resume, steps)
        return
    if algo not in TRAIN_ALGOS:
        raise typer.BadParameter(f"algo must be one of {', '.join(TRAIN_ALGOS)}")
    if init is not None and algo not in SEARCH_ALGOS:
        raise typer.BadParameter(
            f"--init starts a controller search ({', '.join(SEARCH_ALGOS)}), not {algo}"
        )
    overrides = load_config(config)
    if algo in SEARCH_ALGOS:
        from l2run.train.evaluate import SEARCH_MODULES

        _require_train_extra(SEARCH_MODULES, f"--algo {algo}")
        from l2run.train import gait_search as gs

        options = {
            "controller": algo,
            "max_env_steps": steps,
            "seed": seed,
            "difficulty": difficulty,
            "engine": engine,
            "max_obstacles": max_obstacles,
        }
        # A previous search's search_config.json may be reused as --config: keys the command
        # line also sets must agree with it (no silent winner).
        clash = [k for k in options if k in overrides and overrides[k] != options[k]]
        if clash:
            raise typer.BadParameter(
                f"{', '.join(clash)} in the JSON config differ from the command line "
                "(--algo sets controller, --steps max_env_steps); remove them or pass equal "
                "values",
                param_hint="--config",
            )
        try:
            cfg = gs.SearchConfig(**{**overrides, **options})
            if isinstance(cfg.frozen, list):  # JSON has no tuples
                cfg.frozen = tuple(cfg.frozen)
            cfg.validate()
            x0 = None if init is None else gs.start_params(init, cfg.controller)
            size = len(gs.controller(cfg.controller)[0].INITIAL_PARAMS)
            if x0 is not None and len(x0) != size:
                raise ValueError(
                    f"--init {init} holds {len(x0)} values; a {cfg.controller} search starts "
                    f"from {size} (a {cfg.controller} file, or a walker file for a cruiser)"
                )
        except TypeError as exc:
            message = f"not a SearchConfig field: {exc}"
            raise typer.BadParameter(message, param_hint="--config") from None
        except (OSError, ValueError) as exc:
            raise typer.BadParameter(str(exc)) from None
        _check_out(out, overwrite)
        population = gs.population_fn(cfg)
        try:
            best = gs.search(population, cfg, out, x0=x0, overwrite=overwrite)
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from None
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
        for key in ("init_from", "base_policy"):
            value = overrides.get(key)
            if config is not None and isinstance(value, str) and value and value != "pretrained":
                # A relative path in a config file is the file's neighbour, wherever the
                # command runs from (an absolute one stays as it is).
                overrides[key] = str(config.parent / value)
        try:
            cfg = PPOConfig(**{**overrides, **options})
        except TypeError as exc:
            raise typer.BadParameter(
                f"not a PPOConfig field: {exc}", param_hint="--config"
            ) from None
        try:
            cfg.validate()  # here too: before JAX starts
            _check_out(out, overwrite)
            path = ppo_train(cfg, out, overwrite=overwrite)
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from None
        typer.echo(f"model saved to {path}")
        return
    from l2run.train.evaluate import SB3_MODULES

    _require_train_extra(SB3_MODULES, f"--algo {algo}")
    from l2run.train.sb3 import TrainConfig
    from l2run.train.sb3 import train as sb3_train

    unknown = sorted(set(overrides) - set(SB3_CONFIG_KEYS))
    if unknown:
        raise typer.BadParameter(
            f"unknown keys {unknown} in the JSON config; {algo} takes {list(SB3_CONFIG_KEYS)}",
            param_hint="--config",
        )
    cfg = TrainConfig(
        algo=algo,
        engine=engine,
        steps=steps,
        difficulty=difficulty,
        seed=seed,
        max_obstacles=max_obstacles,
    )
    hyper = overrides.get("hyper", {})
    unknown = sorted(set(hyper) - set(cfg.hyper))
    if unknown:  # a typo would otherwise train with the default quietly
        raise typer.BadParameter(
            f"unknown hyper-parameters {unknown}; {algo} takes {sorted(cfg.hyper)}",
            param_hint="--config",
        )
    cfg.hyper.update(hyper)
    cfg.wrappers = overrides.get("wrappers", {})
    cfg.checkpoint_every = overrides.get("checkpoint_every", cfg.checkpoint_every)
    try:
        cfg.validate()
        _check_out(out, overwrite)
        path = sb3_train(cfg, out, overwrite=overwrite)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    typer.echo(f"model saved to {path}")


def _given_options(ctx: typer.Context, names: tuple[str, ...]) -> list[str]:
    """Of the command's parameters `names`, those the user set (not left at their default)."""
    # By name: typer may bring its own copy of click, whose ParameterSource is another class.
    unset = (None, "DEFAULT", "DEFAULT_MAP")
    sources = {name: ctx.get_parameter_source(name) for name in names}
    return [name for name, source in sources.items() if getattr(source, "name", None) not in unset]


def run_kind(run: Path) -> str:
    """What trained the run in folder `run`: "search", "ppo" or "sb3"; ValueError when it is
    no training run's folder."""
    from l2run.train.gait_search import SEARCH_CONFIG_FILE, SEARCH_STATE_FILE
    from l2run.train.run_dir import read_run_config

    if not run.is_dir():
        raise ValueError(f"{run} is not a folder")
    if (run / SEARCH_CONFIG_FILE).is_file() or (run / SEARCH_STATE_FILE).is_file():
        return "search"
    if not (run / "config.json").is_file():
        raise ValueError(f"{run} holds no training run (no config.json or search_config.json)")
    algo = read_run_config(run).get("algo")
    if algo == "ppo":
        return "ppo"
    if algo in ("ddpg", "td3", "sac"):
        return "sb3"
    raise ValueError(f"{run / 'config.json'} names no algorithm l2run trains (algo={algo!r})")


def _resume(ctx: typer.Context, run: Path, steps: int) -> None:
    """`l2run train --resume RUN [--steps N]`: continue RUN with its own settings."""
    # every option but these two: one added to `train` later is refused here too
    given = _given_options(
        ctx, tuple(name for name in ctx.params if name not in ("resume", "steps"))
    )
    if given:
        flags = ", ".join("--" + name.replace("_", "-") for name in given)
        raise typer.BadParameter(
            f"a resumed run keeps its own settings; drop {flags} (only --steps, the new "
            "total budget, may be given)",
            param_hint="--resume",
        )
    budget = steps if _given_options(ctx, ("steps",)) else None
    try:
        kind = run_kind(run)
        from l2run.train.run_dir import remove_leftovers

        remove_leftovers(run)  # a killed run's half-written files
        if kind == "search":
            from l2run.train.evaluate import SEARCH_MODULES

            _require_train_extra(SEARCH_MODULES, "--resume of a controller search")
            from l2run.train import gait_search as gs

            cfg = gs.resume_config(run)
            if budget is not None:
                cfg.max_env_steps = budget
            cfg.validate()
            best = gs.search(gs.population_fn(cfg), cfg, run, resume=True)
            typer.echo(f"best parameters in {run / 'best.json'} ({len(best)} values)")
            return
        if kind == "ppo":
            from l2run.train import ppo_jax

            cfg = ppo_jax.resume_config(run)
            if budget is not None:
                cfg.total_steps = budget
            cfg.validate()
            path = ppo_jax.train(cfg, run, resume=True)
        else:
            from l2run.train.evaluate import SB3_MODULES

            _require_train_extra(SB3_MODULES, "--resume of a stable-baselines3 run")
            from l2run.train import sb3

            cfg = sb3.resume_config(run)
            if budget is not None:
                cfg.steps = budget
            path = sb3.train(cfg, run, resume=True)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--resume") from None
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
            help="A training run directory (l2run train --out) or an SB3 run's "
            "checkpoints/*.zip, a gait/walker/cruiser/planner .json, or 'pretrained'."
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
    from l2run.course import check_difficulty
    from l2run.engines import ENGINE_NAMES
    from l2run.train.evaluate import load_policy, run_episode

    if engine not in ENGINE_NAMES:
        raise typer.BadParameter(f"engine must be one of {ENGINE_NAMES}", param_hint="--engine")
    try:
        check_difficulty(difficulty)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--difficulty") from exc
    try:
        load_policy(model)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--model") from exc
    for k in range(episodes):
        try:
            r = run_episode(
                model,
                engine,
                difficulty,
                seed + k,
                render_mode="human" if visualize else None,
                max_steps=max_steps,
            )
        except ValueError as exc:  # e.g. a policy whose actions the env refuses
            raise typer.BadParameter(f"episode {k + 1} (seed {seed + k}): {exc}") from exc
        typer.echo(
            f"episode {k + 1}: distance {r.distance:.3f} m, reward {r.reward:.3f}, "
            f"{r.steps} steps, {'fell' if r.fell else 'did not fall'}"
        )


def evaluate(
    policy: Annotated[
        str,
        typer.Option(
            help="'pretrained', 'zero', a gait/walker/cruiser/planner .json, a training run "
            "directory or an SB3 run's checkpoints/*.zip."
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
    obstacle_physics: Annotated[
        str,
        typer.Option(
            help="reported: obstacles simulated at the size observed; osim-rl-1.5: as 2017 "
            "simulated them, to compare with its scores (OpenSim engine only)."
        ),
    ] = "reported",
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
            obstacle_physics=obstacle_physics,
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
                obstacle_physics=obstacle_physics,
            )
        )
    else:
        physics = "" if obstacle_physics == "reported" else f", {obstacle_physics} obstacles"
        _print_results(results, f"{policy} on {engine}, difficulty {difficulty}{physics}")


def _check_demo_video(video: Path) -> None:
    """A usage error, before minutes of simulation, when ``video`` cannot be written."""
    import os

    from l2run.render.video import VIDEO_SUFFIXES, check_video_target

    try:
        check_video_target(video)
    except ValueError:
        raise typer.BadParameter(
            f"video must end in one of {VIDEO_SUFFIXES} (or pass --no-video), got {video.name!r}",
            param_hint="--video",
        ) from None
    except IsADirectoryError:
        raise typer.BadParameter(
            f"{video} is a folder; give a file name such as {video / 'demo.mp4'}",
            param_hint="--video",
        ) from None
    folder = video.resolve().parent
    if not folder.is_dir():
        raise typer.BadParameter(f"no folder {video.parent} to write into", param_hint="--video")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise typer.BadParameter(f"cannot write into {folder}", param_hint="--video")


def _keep_recording(npz: Path, video: Path) -> Path:
    """Move the recorded episode next to ``video`` (``<video stem>.npz``, or ``-1``, ``-2``...
    when taken); into a fresh temporary folder when that folder cannot take it."""
    import shutil
    import tempfile

    names = (video.with_name(f"{video.stem}{f'-{n}' if n else ''}.npz") for n in range(1000))
    target = next((name for name in names if not name.exists()), None)
    if target is not None:
        try:
            return Path(shutil.move(npz, target))
        except OSError:
            pass
    return Path(shutil.move(npz, Path(tempfile.mkdtemp(prefix="l2run-demo-")) / npz.name))


def demo(
    seeds: Annotated[str, typer.Option(help="Seeds of the courses, e.g. '1-3'.")] = "1-3",
    video: Annotated[
        Path | None,
        typer.Option(
            help="Video of the first episode (.mp4/.gif). Should it fail to be written, its "
            "recording is kept beside it (.npz) and the exit code is 1."
        ),
    ] = Path("demo.mp4"),
    workers: Annotated[int, typer.Option(min=1, help="Parallel worker processes.")] = 1,
    no_video: Annotated[bool, typer.Option("--no-video", help="Write no video.")] = False,
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
    if no_video:
        video = None
    can_video = video is not None and importlib.util.find_spec("l2run.render.video") is not None
    if can_video:  # checked before minutes of simulation, not after
        _check_demo_video(video)
    results = []
    video_error: str | None = None
    if can_video:
        from l2run.render.recording import load_recording
        from l2run.render.video import write_video

        with tempfile.TemporaryDirectory() as tmp:
            npz = Path(tmp) / "demo.npz"
            from rich.console import Console

            with Console(stderr=True).status(
                f"seed {seed_list[0]}: the recorded episode for {video} (the planner takes "
                "~2-4 min per episode)"
            ):
                results.append(
                    run_episode("pretrained", "opensim", 2, seed_list[0], record=str(npz))
                )
            try:
                write_video(load_recording(npz), video)
            except Exception as exc:  # the episode took minutes: keep it whatever went wrong
                first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
                kept = _keep_recording(npz, video)
                video_error = (
                    f"cannot write the video {video}: {first}\n"
                    f"the recorded episode is kept in {kept} "
                    f"(l2run render {kept} -o {video})"
                )
        seed_list = seed_list[1:]
    results += run_eval("pretrained", "opensim", 2, seed_list, workers=workers, progress=True)
    _print_results(results, "pretrained runner, OpenSim engine, difficulty 2")
    if video_error is not None:
        typer.secho(f"error: {video_error}", err=True, fg=typer.colors.RED)
        raise typer.Exit(code=1)
    if can_video:
        typer.echo(f"video of seed {results[0].seed}: {video}")
