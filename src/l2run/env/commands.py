"""`l2run run`: one episode of the runner, printed as distance and reward."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

POLICIES = ("random", "zero")


def run(
    difficulty: Annotated[
        int, typer.Option(help="0: flat ground, 1: obstacles, 2: obstacles + psoas.")
    ] = 2,
    seed: Annotated[int, typer.Option(help="Seed of the course and of the random actions.")] = 1,
    engine: Annotated[str, typer.Option(help="Physics engine: opensim or jax.")] = "opensim",
    steps: Annotated[
        int, typer.Option(min=1, max=1000, help="Most steps (0.01 s each) to run.")
    ] = 1000,
    policy: Annotated[
        str,
        typer.Option(
            help="random: uniform excitations in [0, 1] drawn from --seed (the seed's random "
            "walk); zero: all muscles relaxed."
        ),
    ] = "random",
    max_obstacles: Annotated[int, typer.Option(help="3 as in round 1, 10 as in round 2.")] = 3,
    record: Annotated[
        Path | None, typer.Option(help="Write the episode to this .npz recording.")
    ] = None,
    visualize: Annotated[
        bool, typer.Option(help="Open the live viewer (needs a display).")
    ] = False,
    obstacle_physics: Annotated[
        str,
        typer.Option(
            help="reported: obstacles simulated at the size observed (the seed's description); "
            "osim-rl-1.5: as osim-rl 1.5 simulated them (0.1 m spheres; OpenSim engine only)."
        ),
    ] = "reported",
) -> None:
    """Run one episode with random (or zero) excitations; print the distance and the reward."""
    import time

    import numpy as np
    from rich.console import Console
    from rich.progress import Progress

    from l2run.env.runenv import RunEnv

    if policy not in POLICIES:
        raise typer.BadParameter(f"policy must be one of {POLICIES}, got {policy!r}")
    console = Console()
    try:
        env = RunEnv(
            visualize=visualize,
            max_obstacles=max_obstacles,
            engine=engine,
            record=None if record is None else str(record),
            obstacle_physics=obstacle_physics,
        )
        obs = env.reset(difficulty=difficulty, seed=seed)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    actions = np.random.RandomState(seed)
    start_x = obs[1]
    total = 0.0
    info: dict = {}
    n = 0  # steps taken
    # The first step is timed apart: with the JAX engine it compiles the step program
    # (seconds), which the speed of the steps after it should not include.
    began = first_done = time.perf_counter()
    interrupted = False
    try:
        with Progress(transient=True, console=console) as progress:
            task = progress.add_task("running", total=steps)
            while n < steps:
                action = actions.uniform(0.0, 1.0, 18) if policy == "random" else np.zeros(18)
                obs, reward, done, info = env.step(action)
                n += 1
                if n == 1:
                    first_done = time.perf_counter()
                total += reward
                progress.advance(task)
                if done:
                    break
    except KeyboardInterrupt:  # Ctrl-C: report the steps taken, keep their recording
        interrupted = True
    finally:
        ended = time.perf_counter()
        env.close()  # writes the recording, whatever ended the loop
    console.print(f"engine {engine}, difficulty {difficulty}, seed {seed}, policy {policy}")
    speed = f"{(n - 1) / (ended - first_done):.1f} steps/s after the first" if n > 1 else ""
    console.print(
        f"steps: {n} ({n * 0.01:.2f} s simulated; first step {first_done - began:.2f} s"
        f"{', ' + speed if speed else ''})"
    )
    console.print(f"distance: {obs[1] - start_x:.4f} m")
    console.print(f"reward: {total:.4f}")
    if "error" in info:
        console.print(f"ended by: {info['error']}")
    if record is not None:
        console.print(f"recording: {record}")
    if interrupted:
        console.print(f"interrupted after {n} steps")
        raise typer.Exit(130)  # the shell's code for a run ended by Ctrl-C
