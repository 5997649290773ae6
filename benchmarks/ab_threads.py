"""Processes × XLA CPU threads, A/B: how to spend a machine's cores on the JAX engine.

    python benchmarks/ab_threads.py [--settings 1x1,1x0,2x1] [--rounds 3] [--sizes 64,1024]

A setting "PxT" runs P processes at once, each on T XLA CPU threads (0: XLA's default, one per
core). XLA's CPU client sizes its thread pool once per process (`l2run.engines.cpu_threads`),
hence processes. Each process compiles, waits until all of its setting's processes are ready,
then runs each workload for `--seconds`: the single-env `lax.scan` rollout (100 steps, as
`bench_engines.py`) and one batched step at each N. The settings run in turns (round 1: every
setting, round 2: ...) so that the machine's other load falls on all alike. Printed per setting
and workload, best round: steps per second of all its processes together (wall clock) and per
CPU-second, and the ratios to the first setting. Timings are measured, never asserted.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import subprocess
import sys
import time

from l2run.engines.cpu_threads import THREADS_ENV

SCAN_STEPS = 100


def child(sizes: list[int], seconds: float) -> dict[str, list[float]]:
    """[steps, wall s, CPU s] of each workload, run for `seconds` after the parent says go."""
    import jax
    import jax.numpy as jnp
    from bench_engines import batched_state, courses, feedback_policy, smooth_excitations

    from l2run.engines.jax import rollout as fx
    from l2run.engines.jax.params import load_params
    from l2run.engines.jax.step import DEFAULT_INTEGRATOR, first_step_integrator, reset, step

    integrator = DEFAULT_INTEGRATOR
    first = first_step_integrator(integrator)
    params = fx.cast_floats(load_params(), jnp.float64)
    obstacles, psoas = fx.course_arrays(courses(1))
    state0 = reset(params, jnp.asarray(obstacles[0]), jnp.asarray(psoas[0]))
    actions = jnp.asarray(smooth_excitations(2, 1)[:, 0])
    state1 = step(params, state0, actions[0], integrator, first)[0]
    policy, key = feedback_policy(), jax.random.PRNGKey(0)

    def scan():
        return fx.rollout(
            params, state1, policy, key, SCAN_STEPS, integrator, first_integrator=first
        )

    workloads = {"single env, scan rollout": (scan, SCAN_STEPS)}
    for n in sizes:
        state = batched_state(state1, n)
        acts = jnp.asarray(smooth_excitations(1, n)[0])
        compiled = fx.batch_step.lower(params, state, acts, integrator, None).compile()
        workloads[f"batched N = {n}"] = (functools.partial(compiled, params, state, acts), n)
    for fn, _ in workloads.values():
        jax.block_until_ready(fn())  # compiled and warm before the clock starts
    print("ready", flush=True)
    sys.stdin.readline()  # go
    out = {}
    for name, (fn, count) in workloads.items():
        steps, t, c = 0, time.perf_counter(), time.process_time()
        while time.perf_counter() - t < seconds:
            jax.block_until_ready(fn())
            steps += count
        out[name] = [steps, time.perf_counter() - t, time.process_time() - c]
    return out


def run_setting(processes: int, threads: int, args: argparse.Namespace) -> dict[str, list[float]]:
    """Start `processes` children on `threads` threads each, start them together, sum them."""
    env = {k: v for k, v in os.environ.items() if k not in ("NPROC", THREADS_ENV)}
    if threads:
        env[THREADS_ENV] = str(threads)
    cmd = [sys.executable, os.path.abspath(__file__), "--child", "--sizes", args.sizes]
    cmd += ["--seconds", str(args.seconds)]
    children = [
        subprocess.Popen(cmd, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        for _ in range(processes)
    ]
    for c in children:
        if c.stdout.readline().strip() != "ready":
            raise RuntimeError("a benchmark process failed before it was ready")
    for c in children:
        c.stdin.write("go\n")
        c.stdin.flush()
    total: dict[str, list[float]] = {}
    for c in children:
        result = json.loads(c.communicate()[0].strip().splitlines()[-1])
        for name, (steps, wall, cpu) in result.items():
            s = total.setdefault(name, [0.0, 0.0, 0.0])  # steps/s summed, steps, CPU s
            s[0] += steps / wall
            s[1] += steps
            s[2] += cpu
    return total


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--settings", default="1x1,1x0,2x1", help="PxT: P processes of T threads (0: per core)"
    )
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--sizes", default="64,1024", help="batch sizes N")
    p.add_argument("--seconds", type=float, default=3.0, help="timed seconds per workload")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    sizes = [int(v) for v in args.sizes.split(",") if v]
    if args.child:
        print(json.dumps(child(sizes, args.seconds)))
        return
    settings = [tuple(int(v) for v in s.split("x")) for s in args.settings.split(",")]
    rounds: dict[tuple, list[dict]] = {s: [] for s in settings}
    for r in range(args.rounds):
        for s in settings:
            rounds[s].append(run_setting(*s, args))
            print(f"round {r + 1}, {s[0]} process(es) × {s[1] or 'default'} thread(s): done")

    def label(s: tuple) -> str:
        return f"{s[0]} × {s[1]} thread" if s[1] else f"{s[0]} × default ({os.cpu_count()} cores)"

    print(f"\nbest of {args.rounds} rounds; processes × threads; steps/s of all processes (wall)")
    print("and steps per CPU-second; ratios to the first setting")
    print("| workload | " + " | ".join(label(s) for s in settings) + " |")
    print("|---|" + "---:|" * len(settings))
    first = settings[0]
    for name in rounds[first][0]:
        wall = {s: max(run[name][0] for run in rounds[s]) for s in settings}
        cpu = {s: max(run[name][1] / run[name][2] for run in rounds[s]) for s in settings}
        cells = [
            f"{wall[s]:,.0f} ({wall[s] / wall[first]:.2f}) / "
            f"{cpu[s]:,.0f} ({cpu[s] / cpu[first]:.2f})"
            for s in settings
        ]
        print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
