"""XLA CPU threads per process, A/B: the JAX engine with one thread against XLA's default.

    python benchmarks/ab_threads.py [--threads 1,0] [--rounds 3] [--sizes 64,1024]

XLA's CPU client sizes its thread pool once per process (`l2run.engines.cpu_threads`), so each
setting runs in its own child process; the children run in turns (A, B, A, B, ...) so that the
machine's other load falls on both alike. Each child times, after compiling: the single-env
`lax.scan` rollout (100 steps, as `bench_engines.py`) and one batched step at each N, in wall
and CPU time. Printed: the best of the rounds per setting and the ratios to the first setting.
Timings are measured, never asserted.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import subprocess
import sys
import time

SCAN_STEPS = 100
REPEATS = 3  # timed calls per child and figure; the best counts


def child(sizes: list[int]) -> dict[str, float]:
    """Figures of this process: steps per second (wall) and per CPU-second."""
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

    def best(fn, count: int) -> tuple[float, float]:
        fn()  # compile / warm up
        wall, cpu = [], []
        for _ in range(REPEATS):
            t, c = time.perf_counter(), time.process_time()
            jax.block_until_ready(fn())
            wall.append(time.perf_counter() - t)
            cpu.append(time.process_time() - c)
        return count / min(wall), count / min(cpu)

    out = {}
    out["scan wall"], out["scan cpu"] = best(
        lambda: fx.rollout(
            params, state1, policy, key, SCAN_STEPS, integrator, first_integrator=first
        ),
        SCAN_STEPS,
    )
    for n in sizes:
        state = batched_state(state1, n)
        acts = jnp.asarray(smooth_excitations(1, n)[0])
        compiled = fx.batch_step.lower(params, state, acts, integrator, None).compile()
        batched = functools.partial(compiled, params, state, acts)
        out[f"N={n} wall"], out[f"N={n} cpu"] = best(batched, n)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--threads", default="1,0", help="settings to compare (0: one per core)")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--sizes", default="64,1024", help="batch sizes N")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    sizes = [int(v) for v in args.sizes.split(",") if v]
    if args.child:
        print(json.dumps(child(sizes)))
        return
    settings = [int(v) for v in args.threads.split(",")]
    results: dict[int, list[dict[str, float]]] = {s: [] for s in settings}
    here = os.path.dirname(os.path.abspath(__file__))
    for r in range(args.rounds):
        for s in settings:
            env = dict(os.environ)
            env.pop("NPROC", None)
            env.pop("PJRT_NPROC", None)
            if s:
                env["PJRT_NPROC"] = str(s)
            cmd = [sys.executable, os.path.join(here, "ab_threads.py"), "--child"]
            done = subprocess.run(
                [*cmd, "--sizes", args.sizes], env=env, capture_output=True, text=True, check=True
            )
            results[s].append(json.loads(done.stdout.strip().splitlines()[-1]))
            print(f"round {r + 1}, threads {s or 'one per core'}: done", flush=True)
    keys = list(results[settings[0]][0])
    label = {s: (f"{s} thread(s)" if s else f"default ({os.cpu_count()} cores)") for s in settings}
    print(f"\nsteps per second (wall) / per CPU-second, best of {args.rounds} processes")
    print("| figure | " + " | ".join(label[s] for s in settings) + " | ratio to first |")
    print("|---|" + "---:|" * (len(settings) + 1))
    for k in keys:
        best = {s: max(run[k] for run in results[s]) for s in settings}
        ratios = " / ".join(f"{best[settings[0]] / best[s]:.2f}" for s in settings[1:])
        print(f"| {k} | " + " | ".join(f"{best[s]:,.0f}" for s in settings) + f" | {ratios} |")


if __name__ == "__main__":
    main()
