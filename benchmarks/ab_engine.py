"""The JAX engine of a git revision against the working tree's, in one process, timed in turns.

    python benchmarks/ab_engine.py --baseline REV [--sizes 64,256] [--rounds 10]
        [--single|--step|--rollout|--loop|--env]

On a shared machine two runs of one program differ by ±30 %, so comparing two runs says little.
This loads REV's `l2run` package (extracted with `git archive`, renamed `l2run_baseline`) beside
the working tree's, compiles one vmapped `imex_stiff` substep with each (float64, params passed as
arguments, the same N runners on N difficulty-2 courses), checks that both give the same numbers,
and times them alternately (both compiled with the working tree's `engine_jit` options): CPU µs per
runner per substep, min and median over the rounds. `--single` times one unbatched runner per call
instead; `--step` times whole control steps through each package's own `rollout.batch_step` (its
chunking, layout and compile options included; `--dtype float32` casts params and state),
CPU µs per runner per step; `--rollout` times one runner's
`rollout.rollout` (a `lax.scan` of ROLLOUT_STEPS steps under bench_engines' feedback policy, as its
single-env row), CPU µs per step; `--loop` times one runner's jitted `step` called from Python
step by step (bench_engines' "jitted step loop" row: each call a program execution), CPU µs per
step; `--env` times each package's `RunEnv(engine="jax").step` (the
seed's API: the engine's step, the observation, the ligament penalty and the info dict), CPU µs
per step."""

from __future__ import annotations

import argparse
import pathlib
import re
import subprocess
import sys
import tempfile
import time
from functools import partial

import numpy as np

REPO = pathlib.Path(__file__).resolve().parents[1]
BASELINE_PACKAGE = "l2run_baseline"
PACKAGES = {"baseline": BASELINE_PACKAGE, "working tree": "l2run"}  # label -> package
CALLS_PER_ROUND = 10
SUBSTEP_S = 0.001
ROLLOUT_STEPS = 100
ENV_STEPS = 50  # RunEnv steps per timed call (an episode is reset when it ends)
LOOP_STEPS = 50  # jitted step calls per timed call of `--loop` (from the same state each time)


def extract_baseline(rev: str, into: pathlib.Path) -> None:
    """REV's src/l2run as package `l2run_baseline` under `into` (its imports renamed)."""
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", rev, "src/l2run"], check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    package = into / BASELINE_PACKAGE
    (into / "src" / "l2run").rename(package)
    for path in package.rglob("*.py"):
        text = path.read_text()
        text = re.sub(r"\bl2run\.", f"{BASELINE_PACKAGE}.", text)
        text = re.sub(r"\bfrom l2run import\b", f"from {BASELINE_PACKAGE} import", text)
        path.write_text(text)


def env_steps(env, actions: np.ndarray) -> list[float]:
    """`len(actions)` steps of a RunEnv (reset at an episode's end); the last observation."""
    for action in actions:
        obs, _reward, done, _info = env.step(action)
        if done:
            obs = env.reset(difficulty=2, seed=0)
    return obs


def step_loop(step_module, params, state, actions: list, integrator) -> object:
    """`len(actions)` calls of a package's jitted `step` (its first-step scheme as the
    default), host action rows as a gymnasium env passes them; the last observation."""
    first = step_module.first_step_integrator(integrator)
    for action in actions:
        state, obs, _reward, _done = step_module.step(params, state, action, integrator, first)
    return obs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--baseline", required=True, help="git revision to compare against")
    ap.add_argument("--sizes", default="64,256", help="batch sizes N, comma-separated")
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--single", action="store_true", help="one unbatched runner per call")
    ap.add_argument("--step", action="store_true", help="whole steps through batch_step")
    ap.add_argument("--rollout", action="store_true", help="one runner's lax.scan rollout")
    ap.add_argument("--loop", action="store_true", help="one runner's jitted step per call")
    ap.add_argument("--env", action="store_true", help="RunEnv(engine='jax').step, one runner")
    ap.add_argument(
        "--dtype", default="float64", choices=("float64", "float32"), help="with --step only"
    )
    args = ap.parse_args()
    if args.dtype != "float64" and not args.step:
        ap.error("--dtype applies to --step only")

    with tempfile.TemporaryDirectory() as tmp:
        extract_baseline(args.baseline, pathlib.Path(tmp))
        sys.path.insert(0, tmp)
        import importlib

        import jax
        import jax.numpy as jnp

        jax.config.update("jax_enable_x64", True)
        from bench_engines import (
            SEED,
            batched_state,
            feedback_policy,
            first_state,
            smooth_excitations,
        )

        engines = {}
        for label, package in PACKAGES.items():
            jx = f"{package}.engines.jax"
            engines[label] = (
                importlib.import_module(f"{jx}.system"),
                importlib.import_module(f"{jx}.params").load_params(),
                importlib.import_module(f"{jx}.integrate").Continuous,
                importlib.import_module(f"{jx}.rollout"),
                importlib.import_module(f"{jx}.state").EnvState,
            )
        from l2run.engines.jax.step import parse_integrator
        from l2run.engines.jax.xla_options import engine_jit

        _, params, _, _, _ = engines["working tree"]
        integrator = parse_integrator("imex_stiff:10")
        state = first_state(params, integrator)
        h = jnp.asarray(SUBSTEP_S)
        one_runner = args.single or args.rollout or args.env or args.loop
        unit = "step" if args.step or args.rollout or args.env or args.loop else "substep"
        sizes = [1] if one_runner else [int(s) for s in args.sizes.split(",")]
        policy, key = feedback_policy(), jax.random.PRNGKey(SEED)
        for n in sizes:
            if not (args.env or args.rollout or args.loop):  # those start from `state` themselves
                batch = batched_state(state, n)
                excitation = jnp.asarray(smooth_excitations(1, n)[0])
            runs, outputs = {}, {}
            for label, (system, p, continuous, rollout, env_state) in engines.items():
                if args.env:
                    env = importlib.import_module(f"{PACKAGES[label]}.env.runenv").RunEnv(
                        engine="jax"
                    )
                    env.reset(difficulty=2, seed=SEED)
                    actions = np.asarray(smooth_excitations(ENV_STEPS, 1))[:, 0]
                    runs[label] = (partial(env_steps, env, actions), ())
                    outputs[label] = [jnp.asarray(runs[label][0]())]
                    continue
                if args.loop:
                    step_module = importlib.import_module(f"{PACKAGES[label]}.engines.jax.step")
                    actions = list(np.asarray(smooth_excitations(LOOP_STEPS, 1))[:, 0])
                    inputs = (step_module, p, env_state(*state), actions, integrator)
                    runs[label] = (step_loop, inputs)
                    outputs[label] = [jnp.asarray(step_loop(*inputs))]
                    continue
                if args.rollout:
                    inputs = (p, env_state(*state), policy, key, ROLLOUT_STEPS, integrator)
                    runs[label] = (lambda *a, rollout=rollout: rollout.rollout(*a), inputs)
                    outputs[label] = jax.tree.leaves(runs[label][0](*inputs))
                    continue
                if args.step:
                    inputs = rollout.cast_floats((p, env_state(*batch), excitation), args.dtype)
                    lowered = rollout.batch_step.lower(*inputs, integrator, None)
                    runs[label] = (lowered.compile(), inputs)
                    outputs[label] = jax.tree.leaves(runs[label][0](*inputs))
                    continue
                y = continuous(batch.q, batch.u, batch.activation, batch.fiber_length)
                inputs = (p, y, excitation, batch.obstacles, batch.psoas)

                def substep(p, y, e, o, ps, system=system):
                    return system.imex_substep(p, y, e, o, ps, h, stiff=True)

                if args.single:
                    inputs = (p, *jax.tree.map(lambda a: a[0], inputs[1:]))
                    fn = engine_jit(substep)
                else:
                    fn = engine_jit(jax.vmap(substep, in_axes=(None, 0, 0, 0, 0)))
                compiled = fn.lower(*inputs).compile()
                runs[label] = (compiled, inputs)
                outputs[label] = jax.tree.leaves(compiled(*inputs))
            diff = max(
                float(jnp.max(jnp.abs(jnp.asarray(a, float) - jnp.asarray(b, float))))
                for a, b in zip(outputs["baseline"], outputs["working tree"], strict=True)
            )
            per_call = n  # runners (or, one runner, steps) that one timed call covers
            if args.rollout:
                per_call = ROLLOUT_STEPS
            elif args.env:
                per_call = ENV_STEPS
            elif args.loop:
                per_call = LOOP_STEPS
            times: dict[str, list[float]] = {label: [] for label in runs}
            for _ in range(args.rounds):
                for label, (compiled, inputs) in runs.items():
                    start = time.process_time()
                    for _ in range(CALLS_PER_ROUND):
                        out = compiled(*inputs)
                    jax.block_until_ready(out)
                    elapsed = time.process_time() - start
                    times[label].append(elapsed / CALLS_PER_ROUND / per_call * 1e6)
            what = f"N = {n}{' (unbatched)' if one_runner else ''}"
            print(f"{what}: largest output difference {diff:.1e}")
            for label, values in times.items():
                values.sort()
                print(
                    f"  {label:12s} min {values[0]:7.1f}  median {values[len(values) // 2]:7.1f}"
                    f" CPU µs per runner per {unit}"
                )
            ratio = times["baseline"][0] / times["working tree"][0]
            print(f"  baseline / working tree (min): {ratio:.2f}")


if __name__ == "__main__":
    main()
