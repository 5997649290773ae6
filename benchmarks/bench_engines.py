"""Engine throughput, side by side in ONE run on ONE machine: OpenSim vs the JAX engine.

    python benchmarks/bench_engines.py                         # CPU defaults (a few minutes)
    python benchmarks/bench_engines.py --quick                 # smoke run (~1 min)
    JAX_PLATFORMS=cuda python benchmarks/bench_engines.py --max-n 65536 --batch-steps 20

Prints, for float64 and float32: OpenSim engine steps/s; JAX single env (jitted, after compile)
steps/s from a Python loop and from a `lax.scan` rollout, with the ratio to OpenSim; JAX batched
env-steps/s for N = 64 … 4096 (… `--max-n`) with the per-core ratio to OpenSim (env-steps/s ÷
cores ÷ OpenSim steps/s; OpenSim runs on one core); compile times; the integrator's force
(derivative) evaluations per 0.01 s control step next to every figure; bytes per environment and
XLA's memory estimate at N = 4096. Timings are measured, never asserted.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

DEFAULT_SIZES = (64, 256, 1024, 4096)
MEMORY_N = 4096
SEED = 0


@dataclass
class Row:
    """One throughput figure."""

    what: str
    dtype: str
    n: int
    steps_per_s: float  # env-steps per second
    compile_s: float | None
    evals: int  # force evaluations per control step (0: adaptive, unknown)


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def core_count() -> int:
    """Cores this process may run on (the JAX CPU backend may use all of them)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def random_actions(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Excitations in [0, 1] (uniform): a busy, muscle-heavy load for both engines."""
    return rng.uniform(0.0, 1.0, shape)


def courses(n: int, difficulty: int = 2, max_obstacles: int = 3) -> list:
    """n different courses (seeds 0 … n−1), drawn as the environment draws them."""
    from l2run.course import generate_course

    return [
        generate_course(np.random.RandomState(i), difficulty, max_obstacles, seed=i)
        for i in range(n)
    ]


def bench_opensim(steps: int) -> Row:
    """OpenSim engine steps/s (its default adaptive integrator), resetting after a fall."""
    from l2run.engines.opensim_engine import OpenSimEngine
    from l2run.observation import PELVIS_Y

    engine = OpenSimEngine()
    course = courses(1)[0]
    engine.reset(course)
    rng = np.random.default_rng(SEED)
    actions = random_actions(rng, (steps, 18))
    elapsed = 0.0
    for k in range(steps):
        t0 = time.perf_counter()
        engine.step(actions[k])
        elapsed += time.perf_counter() - t0
        if engine.observation()[PELVIS_Y] < 0.65:
            engine.reset(course)
    return Row("OpenSim engine (1 core)", "float64", 1, steps / elapsed, None, 0)


def timed(fn: Callable[[], object]) -> float:
    """Seconds to run fn() (which must block until its results are ready)."""
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def bench_jax_single(params, integrator, steps: int, dtype: str) -> list[Row]:
    """One runner: a Python loop over the jitted step, and one jitted `lax.scan` rollout."""
    import jax
    import jax.numpy as jnp

    from l2run.engines.jax import rollout as fx
    from l2run.engines.jax.step import reset, step

    obstacles, psoas = fx.course_arrays(courses(1))
    state0 = reset(params, jnp.asarray(obstacles[0]), jnp.asarray(psoas[0]))
    actions = jnp.asarray(random_actions(np.random.default_rng(SEED), (steps, 18)))
    actions = actions.astype(params.default.q.dtype)

    compile_s = timed(lambda: jax.block_until_ready(step(params, state0, actions[0], integrator)))

    def loop() -> None:
        s = state0
        for k in range(steps):
            s, obs, _, _ = step(params, s, actions[k], integrator)
        jax.block_until_ready(obs)

    loop_s = timed(loop)

    def replay(obs: jnp.ndarray, key: jax.Array) -> jnp.ndarray:
        return jax.random.uniform(key, (18,), obs.dtype)

    key = jax.random.PRNGKey(SEED)
    scan_compile_s = timed(
        lambda: jax.block_until_ready(fx.rollout(params, state0, replay, key, steps, integrator))
    )
    scan_s = timed(
        lambda: jax.block_until_ready(fx.rollout(params, state0, replay, key, steps, integrator))
    )
    ev = integrator.evaluations
    return [
        Row("JAX single env, jitted step loop", dtype, 1, steps / loop_s, compile_s, ev),
        Row("JAX single env, lax.scan rollout", dtype, 1, steps / scan_s, scan_compile_s, ev),
    ]


def bench_jax_batched(params, integrator, n: int, steps: int, dtype: str) -> tuple[Row, object]:
    """N runners on N courses stepped together by the jitted vmapped step; (row, state)."""
    import jax
    import jax.numpy as jnp

    from l2run.engines.jax import rollout as fx

    obstacles, psoas = fx.course_arrays(courses(n))
    fdtype = params.default.q.dtype
    state = fx.batch_reset(params, jnp.asarray(obstacles, fdtype), jnp.asarray(psoas, fdtype))
    rng = np.random.default_rng(SEED)
    actions = [jnp.asarray(random_actions(rng, (n, 18)), fdtype) for _ in range(min(steps, 4))]
    compile_s = timed(
        lambda: jax.block_until_ready(fx.batch_step(params, state, actions[0], integrator))
    )

    def loop() -> None:
        s = state
        for k in range(steps):
            s, obs, _, _ = fx.batch_step(params, s, actions[k % len(actions)], integrator)
        jax.block_until_ready(obs)

    seconds = timed(loop)
    row = Row("JAX batched, jitted vmapped step", dtype, n, n * steps / seconds, compile_s, 0)
    row.evals = integrator.evaluations
    return row, (state, actions[0])


def memory_report(params, integrator, state, action, n: int) -> list[str]:
    """Bytes per environment of the state, and XLA's memory estimate of the batched step."""
    from l2run.engines.jax import rollout as fx

    per_env = fx.state_nbytes(state) / n
    lines = [
        f"state: {per_env:,.0f} bytes per environment ({per_env * n / 2**20:,.1f} MiB at N={n})"
    ]
    try:
        compiled = fx.batch_step.lower(params, state, action, integrator).compile()
        mem = compiled.memory_analysis()
        sizes = (mem.argument_size_in_bytes, mem.output_size_in_bytes, mem.temp_size_in_bytes)
        arg_mib, out_mib, tmp_mib = (b / 2**20 for b in sizes)
        total = sum(sizes)
        lines.append(
            f"batched step at N={n} (XLA estimate): arguments {arg_mib:,.1f} MiB, outputs "
            f"{out_mib:,.1f} MiB, temporaries {tmp_mib:,.1f} MiB; total {total / 2**20:,.1f} "
            f"MiB = {total / n / 1024:,.1f} KiB per environment"
        )
    except Exception as exc:  # memory_analysis is backend-dependent
        lines.append(f"XLA memory analysis unavailable: {exc}")
    return lines


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--opensim-steps", type=int, default=100, help="OpenSim steps to time")
    p.add_argument("--single-steps", type=int, default=200, help="JAX single-env steps to time")
    p.add_argument("--batch-steps", type=int, default=5, help="batched steps timed per N")
    p.add_argument(
        "--sizes",
        type=lambda s: tuple(int(v) for v in s.split(",")),
        default=DEFAULT_SIZES,
        help="batch sizes N, comma-separated (default 64,256,1024,4096)",
    )
    p.add_argument(
        "--max-n", type=int, default=None, help="add doubling sizes above the largest up to this"
    )
    p.add_argument("--dtypes", default="float64,float32", help="comma-separated: float64,float32")
    p.add_argument("--integrator", default=None, help="JAX scheme:substeps (default: engine's)")
    p.add_argument("--skip-opensim", action="store_true", help="no OpenSim (no ratios)")
    p.add_argument(
        "--quick", action="store_true", help="smoke run: few steps, N=64,256, float64 only"
    )
    args = p.parse_args(argv)
    if args.quick:
        args.opensim_steps, args.single_steps, args.batch_steps = 20, 50, 2
        args.sizes, args.dtypes = (64, 256), "float64"
    sizes = list(args.sizes)
    if args.max_n:
        while sizes[-1] * 2 <= args.max_n:
            sizes.append(sizes[-1] * 2)
    args.sizes = sizes
    args.dtypes = [d.strip() for d in args.dtypes.split(",") if d.strip()]
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    import jax
    import jax.numpy as jnp

    from l2run.engines.jax import rollout as fx
    from l2run.engines.jax.params import load_params
    from l2run.env.vector import _parse_integrator

    integrator = _parse_integrator(args.integrator)
    cores = core_count()
    device = jax.devices()[0]
    print(f"machine: {cpu_name()}, {cores} cores usable; {platform.platform()}")
    print(f"JAX {jax.__version__}, backend {jax.default_backend()}, device {device.device_kind}")
    print(
        f"JAX integrator: {integrator.scheme} × {integrator.substeps} substeps = "
        f"{integrator.evaluations} force evaluations per 0.01 s control step"
    )

    rows: list[Row] = []
    opensim = None
    if not args.skip_opensim:
        opensim = bench_opensim(args.opensim_steps)
        rows.append(opensim)
        print(f"OpenSim: {opensim.steps_per_s:,.1f} steps/s", flush=True)

    memory_lines: list[str] = []
    for dtype in args.dtypes:
        params = fx.cast_floats(load_params(), getattr(jnp, dtype))
        for row in bench_jax_single(params, integrator, args.single_steps, dtype):
            rows.append(row)
            print(f"{row.what} [{dtype}]: {row.steps_per_s:,.1f} steps/s", flush=True)
        for n in args.sizes:
            row, (state, action) = bench_jax_batched(params, integrator, n, args.batch_steps, dtype)
            rows.append(row)
            print(f"batched N={n} [{dtype}]: {row.steps_per_s:,.0f} env-steps/s", flush=True)
            if n == MEMORY_N:
                memory_lines += [
                    f"[{dtype}] " + s for s in memory_report(params, integrator, state, action, n)
                ]
            del state, action

    print()
    print(render_table(rows, opensim, cores))
    best = [r for r in rows if r.n > 1]
    if opensim and best:
        top = max(best, key=lambda r: r.steps_per_s)
        per_core = top.steps_per_s / cores / opensim.steps_per_s
        print(
            f"\nbest batched: N={top.n} [{top.dtype}] {top.steps_per_s:,.0f} env-steps/s = "
            f"{per_core:,.1f}× OpenSim per core ({cores} cores)"
        )
    for line in memory_lines:
        print(line)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak resident memory of this run: {rss:,.0f} MiB")


def render_table(rows: list[Row], opensim: Row | None, cores: int) -> str:
    """A Markdown table (pasteable into RESULTS.md)."""
    head = (
        "| engine | dtype | N | env-steps/s | force evals/step | force evals/s/core | "
        "× OpenSim | × OpenSim per core | compile s |\n"
        "|---|---|---:|---:|---:|---:|---:|---:|---:|"
    )
    lines = [head]
    for r in rows:
        used = 1 if r.n == 1 else cores  # one runner runs on one core
        evals = str(r.evals) if r.evals else "adaptive"
        evals_rate = f"{r.steps_per_s * r.evals / used:,.0f}" if r.evals else "—"
        ratio = per_core = "—"
        if opensim is not None and r is not opensim:
            ratio = f"{r.steps_per_s / opensim.steps_per_s:,.1f}"
            per_core = f"{r.steps_per_s / used / opensim.steps_per_s:,.1f}"
        comp = f"{r.compile_s:.1f}" if r.compile_s is not None else "—"
        lines.append(
            f"| {r.what} | {r.dtype} | {r.n} | {r.steps_per_s:,.1f} | {evals} | {evals_rate} | "
            f"{ratio} | {per_core} | {comp} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
