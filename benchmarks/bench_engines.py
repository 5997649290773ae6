"""Engine throughput, side by side in ONE run on ONE machine: OpenSim vs the JAX engine.

    python benchmarks/bench_engines.py                         # CPU defaults (a few minutes)
    python benchmarks/bench_engines.py --quick                 # smoke run (a few minutes)
    JAX_PLATFORMS=cuda python benchmarks/bench_engines.py --max-n 65536 --batch-steps 20

Prints, for float64 and float32: OpenSim engine steps/s (and, for reference, osim-rl 1.5's own
stepping: what 2017's users ran, ~half our OpenSim engine's speed); JAX single env (jitted,
after compile) steps/s from a Python loop and from a `lax.scan` rollout, with the ratio to
OpenSim; both engines behind `RunEnv.step`, the seed's API (observation list, ligament
penalty, info dict per step);
JAX batched env-steps/s for N = 64 … 4096 (… `--max-n`) with the per-core ratio to OpenSim
(env-steps per CPU-second ÷ OpenSim steps per CPU-second; OpenSim runs on one core); compile
times; the integrator's force (derivative) evaluations per 0.01 s control step next to every
figure; bytes per environment and XLA's memory estimate at N = 4096. Timings are measured,
never asserted.

Excitations are smooth (a sinusoid per muscle, 1–3 Hz, fixed seed; the runner moves without
falling at once) and identical for every engine. Two clocks: wall time (env-steps/s) and the
process's CPU time summed over its threads (env-steps per CPU-second). On a CPU backend the
per-core ratio uses CPU time, so machines shared with other programs (and XLA's own threads)
do not distort it; on a GPU, wall time is what counts. The JAX engine runs on one XLA CPU
thread by default (`--cpu-threads`, as the `l2run` command line; `l2run.engines.cpu_threads`
says why), so on CPU its per-core figures are one core's, like OpenSim's.
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import os
import platform
import resource
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

# The "compile s" column times XLA's compiles: not a read from the engine's on-disk cache of
# programs compiled by an earlier run (`l2run.engines.jax.compile_cache`).
os.environ.setdefault("L2RUN_XLA_CACHE", "0")

from l2run.engines.cpu_threads import THREADS_ENV, choose_cpu_threads  # noqa: E402
from l2run.observation import obstacle_slots  # noqa: E402

DEFAULT_SIZES = (64, 256, 1024, 4096)
MEMORY_N = 4096
AUTORESET_POOL = 256  # courses the autoreset rollout draws fresh episodes from
SEED = 0
MAX_OBSTACLES = 3  # per course (difficulty 2, the seed's default)


@dataclass
class Row:
    """One throughput figure."""

    what: str
    dtype: str
    n: int
    steps: int  # env-steps timed
    wall_s: float
    cpu_s: float  # process CPU time (all threads)
    compile_s: float | None
    evals: int  # force evaluations per control step (0: adaptive, unknown)

    @property
    def steps_per_s(self) -> float:
        return self.steps / self.wall_s

    @property
    def steps_per_cpu_s(self) -> float:
        return self.steps / max(self.cpu_s, 1e-9)


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


def smooth_excitations(steps: int, n: int = 1, seed: int = SEED) -> np.ndarray:
    """(steps, n, 18) excitations in [0, 1]: 0.5 + 0.5 sin(2π f t + φ), f in [1, 3] Hz,
    one frequency and phase per runner and muscle."""
    rng = np.random.default_rng(seed)
    freq = rng.uniform(1.0, 3.0, (n, 18))
    phase = rng.uniform(0.0, 2 * np.pi, (n, 18))
    t = 0.01 * np.arange(steps)[:, None, None]
    return 0.5 + 0.5 * np.sin(2 * np.pi * freq * t + phase)


@functools.cache
def courses(n: int, difficulty: int = 2, max_obstacles: int = MAX_OBSTACLES) -> list:
    """n different courses (seeds 0 … n−1), drawn as the environment draws them (cached:
    65,536 of them take seconds, and a GPU run asks for them once per row)."""
    from l2run.course import generate_course

    return [
        generate_course(np.random.RandomState(i), difficulty, max_obstacles, seed=i)
        for i in range(n)
    ]


def batched_state(state1, n: int):
    """n copies of one runner's `EnvState`, each on its own course (`courses(n)`), holding as
    many obstacle rows as those courses can have (as the vector env and `course_pool` do)."""
    import jax
    import jax.numpy as jnp

    from l2run.engines.jax import rollout as fx

    obstacles, psoas = fx.course_arrays(courses(n), obstacle_slots(MAX_OBSTACLES))
    dtype = state1.q.dtype
    state = jax.tree.map(lambda a: jnp.broadcast_to(a, (n, *a.shape)), state1)
    return state._replace(obstacles=jnp.asarray(obstacles, dtype), psoas=jnp.asarray(psoas, dtype))


def bench_opensim(steps: int) -> Row:
    """OpenSim engine steps/s (its default adaptive integrator), resetting after a fall."""
    from l2run.engines.opensim_engine import OpenSimEngine
    from l2run.observation import PELVIS_Y

    engine = OpenSimEngine()
    course = courses(1)[0]
    engine.reset(course)
    actions = smooth_excitations(steps)[:, 0]
    wall = cpu = 0.0
    for k in range(steps):
        w0, c0 = time.perf_counter(), time.process_time()
        engine.step(actions[k])
        wall += time.perf_counter() - w0
        cpu += time.process_time() - c0
        if engine.observation()[PELVIS_Y] < 0.65:
            engine.reset(course)
    return Row("OpenSim engine", "float64", 1, steps, wall, cpu, None, 0)


OSIM_RL_LABEL = "OpenSim, osim-rl 1.5's stepping (for reference)"


def bench_osim_rl(steps: int) -> Row:
    """What 2017's users ran: osim-rl 1.5's loop on the same model and excitations (a new
    Manager every step at Runge-Kutta-Merson 1e-5, observations and reward read back;
    `bench_opensim.OsimRl15Loop`), restarting after a fall. For reference only: every ratio
    of the table is to our OpenSim engine (~2x this loop, README "Stepping scheme")."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_opensim import OsimRl15Loop

    from l2run.observation import PELVIS_Y

    loop = OsimRl15Loop()
    loop.reset()
    actions = smooth_excitations(steps)[:, 0]
    wall = cpu = 0.0
    for k in range(steps):
        w0, c0 = time.perf_counter(), time.process_time()
        obs, _reward = loop.step(actions[k])
        wall += time.perf_counter() - w0
        cpu += time.process_time() - c0
        if obs[PELVIS_Y] < 0.65:
            loop.reset()
    return Row(OSIM_RL_LABEL, "float64", 1, steps, wall, cpu, None, 0)


def bench_runenv(engine: str, steps: int, integrator=None, dtype: str = "float64") -> Row:
    """`RunEnv.step` steps/s, the seed's API: the engine's step plus the observation list, the
    ligament penalty and the info dict (body poses, contact forces, ...) on the host. Episodes
    restart after a fall; resets are not timed. The JAX engine's compile is timed apart."""
    from l2run.env.runenv import RunEnv

    options = {} if engine == "opensim" else {"integrator": integrator, "dtype": dtype}
    env = RunEnv(engine=engine, **options)
    env.reset(difficulty=2, seed=SEED)
    actions = smooth_excitations(steps + 2)[:, 0]
    compile_s = None
    if engine == "jax":  # the first step's scheme, then the regular one
        compile_s, _ = timed(lambda: [env.step(a) for a in actions[:2]])
    wall = cpu = 0.0
    for action in actions[2:]:
        w0, c0 = time.perf_counter(), time.process_time()
        _obs, _reward, done, _info = env.step(action)
        wall += time.perf_counter() - w0
        cpu += time.process_time() - c0
        if done:
            env.reset(difficulty=2, seed=SEED)
    if engine == "opensim":
        return Row("OpenSim RunEnv.step (the seed's API)", "float64", 1, steps, wall, cpu, None, 0)
    what = f"JAX RunEnv.step (the seed's API, {integrator_label(integrator)})"
    return Row(what, dtype, 1, steps, wall, cpu, compile_s, integrator.evaluations)


def timed(fn: Callable[[], object]) -> tuple[float, float]:
    """(wall, CPU) seconds to run fn() (which must block until its results are ready)."""
    w0, c0 = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - w0, time.process_time() - c0


def integrator_label(integrator) -> str:
    """How the tables name a scheme: "imex_stiff×10"."""
    return f"{integrator.scheme}×{integrator.substeps}"


def bench_jax_single(params, integrator, steps: int, dtype: str) -> tuple[list[Row], object]:
    """One runner: a Python loop over the jitted step, and one jitted `lax.scan` rollout, both
    timed over regular steps (after the episode's first step, which `first_step_row` times).
    Returns the rows and the state after the first step."""
    import jax
    import jax.numpy as jnp

    from l2run.engines.jax import rollout as fx
    from l2run.engines.jax.step import first_step_integrator, reset, step

    first = first_step_integrator(integrator)
    obstacles, psoas = fx.course_arrays(courses(1))
    state0 = reset(params, jnp.asarray(obstacles[0]), jnp.asarray(psoas[0]))
    actions = jnp.asarray(smooth_excitations(steps + 1)[:, 0], params.default.q.dtype)

    compile_s, _ = timed(
        lambda: jax.block_until_ready(step(params, state0, actions[0], integrator, first))
    )
    first_wall, first_cpu = timed(
        lambda: jax.block_until_ready(step(params, state0, actions[0], integrator, first))
    )
    state1 = step(params, state0, actions[0], integrator, first)[0]

    # Host rows, as a gymnasium env receives them: indexing the device array inside the loop
    # would time an eager slice (~0.4 ms each on CPU) along with the step.
    action_rows = list(np.asarray(actions))

    def loop() -> None:
        s = state1
        for k in range(steps):
            s, obs, _, _ = step(params, s, action_rows[k + 1], integrator, first)
        jax.block_until_ready(obs)

    loop_wall, loop_cpu = timed(loop)
    key = jax.random.PRNGKey(SEED)
    policy = feedback_policy()

    def run() -> None:
        jax.block_until_ready(
            fx.rollout(params, state1, policy, key, steps, integrator, first_integrator=first)
        )

    scan_compile_s, _ = timed(run)
    scan_wall, scan_cpu = timed(run)
    ev = integrator.evaluations
    label = integrator_label(integrator)
    rows = [
        Row(
            f"JAX single env, jitted step loop ({label})",
            dtype,
            1,
            steps,
            loop_wall,
            loop_cpu,
            compile_s,
            ev,
        ),
        Row(
            f"JAX single env, lax.scan rollout ({label})",
            dtype,
            1,
            steps,
            scan_wall,
            scan_cpu,
            scan_compile_s,
            ev,
        ),
        Row(
            f"JAX single env, first step of an episode ({integrator_label(first)}, opens {label})",
            dtype,
            1,
            1,
            first_wall,
            first_cpu,
            None,
            first.evaluations,
        ),
    ]
    return rows, state1


def first_state(params, integrator):
    """The default course's state after one control step (its episode's first-step scheme)."""
    import jax.numpy as jnp

    from l2run.engines.jax import step as env_step
    from l2run.observation import pad_obstacles

    dtype = params.default.q.dtype
    state0 = env_step.reset(params, jnp.asarray(pad_obstacles([]), dtype), jnp.ones(2, dtype))
    action = jnp.asarray(smooth_excitations(1)[0, 0], dtype)
    first = env_step.first_step_integrator(integrator)
    return env_step.step(params, state0, action, integrator, first)[0]


def feedback_policy() -> Callable:
    """A fixed random linear feedback ``0.5 + 0.5 sin(obs W)`` (about the cost of a tiny policy
    network) for the scan rollout, which sees observations only."""
    import jax.numpy as jnp

    weights = jnp.asarray(np.random.default_rng(SEED).normal(0.0, 0.1, (41, 18)))

    def policy(obs, key):
        del key
        return 0.5 + 0.5 * jnp.sin(obs @ weights.astype(obs.dtype))

    return policy


def bench_jax_batched(
    params, integrator, state1, n: int, steps: int, dtype: str
) -> tuple[Row, object]:
    """N runners on N courses stepped together by the jitted `batch_step`; (row, state).

    Regular steps: every runner starts from `state1` (one runner after its episode's first
    step, see `bench_jax_single`) on its own course, and the program is compiled without the
    first-step scheme (`first_integrator=None`), as a long-running batch spends almost all its
    steps there."""
    import jax
    import jax.numpy as jnp

    from l2run.engines.jax import rollout as fx

    state = batched_state(state1, n)
    actions = jnp.asarray(smooth_excitations(steps, n), state.q.dtype)
    # Ahead-of-time: the same executable gives the timing, the compile time and XLA's memory
    # estimate (`memory_report`) without a second compilation.
    t0 = time.perf_counter()
    compiled = fx.batch_step.lower(params, state, actions[0], integrator, None).compile()
    jax.block_until_ready(compiled(params, state, actions[0]))
    compile_s = time.perf_counter() - t0

    def loop() -> None:
        s = state
        for k in range(steps):
            s, obs, _, _ = compiled(params, s, actions[k])
        jax.block_until_ready(obs)

    wall, cpu = timed(loop)
    layout = {"minor": "runners last", "major": "vmap"}[fx.batch_layout()]
    what = f"JAX batched, jitted step ({layout})"
    row = Row(what, dtype, n, n * steps, wall, cpu, compile_s, integrator.evaluations)
    return row, (state, compiled)


def _timed_rollout(params, integrator, state, steps: int, first, **dynamic) -> tuple:
    """(wall s, CPU s, compile s, transitions) of one jitted batched `rollout.rollout` of
    `steps` steps with a feedback policy, compiled ahead of time (`dynamic`: its traced keyword
    arguments, e.g. a reset pool)."""
    import jax

    from l2run.engines.jax import rollout as fx

    key = jax.random.PRNGKey(SEED)
    policy = feedback_policy()
    t0 = time.perf_counter()
    compiled = fx.rollout.lower(
        params, state, policy, key, steps, integrator, first_integrator=first, **dynamic
    ).compile()
    _, traj = jax.block_until_ready(compiled(params, state, key, **dynamic))
    compile_s = time.perf_counter() - t0
    wall, cpu = timed(lambda: jax.block_until_ready(compiled(params, state, key, **dynamic)))
    return wall, cpu, compile_s, traj


def bench_jax_batched_rollout(params, integrator, state1, n: int, steps: int, dtype: str) -> Row:
    """N runners for `steps` control steps in one jitted `lax.scan` rollout (`rollout.rollout`)
    with a feedback policy in the loop: one device program, no host round-trip per step, as a
    trainer collects experience. Regular steps, as `bench_jax_batched`; a runner that falls
    stays frozen (no reset), so the figure counts every runner's step whether it fell or not."""
    state = batched_state(state1, n)
    wall, cpu, compile_s, _ = _timed_rollout(params, integrator, state, steps, None)
    what = f"JAX batched, lax.scan rollout of {steps} steps"
    return Row(what, dtype, n, n * steps, wall, cpu, compile_s, integrator.evaluations)


def bench_jax_autoreset_rollout(
    params, integrator, state1, n: int, steps: int, episode_steps: int, graded: bool, dtype: str
) -> Row:
    """A training-like batched rollout: `rollout.rollout` with a course pool, so a runner whose
    episode ends (a fall, or `episode_steps` steps) goes on at once on a fresh course, and its
    next step is an episode's first step: with `graded`, the first-step scheme (the fresh
    runners redone, `rollout.batch_step`: on CPU in loops, on a GPU in a bucket), else the
    regular scheme. The runners'
    step counts start spread over [1, episode_steps) so that their episodes end at different
    steps, as in a long training run. Resets per env-step are appended to the row's name; the
    row's evaluations per step are the regular scheme's (a fresh runner's step takes more)."""
    import jax.numpy as jnp

    from l2run.engines.jax import rollout as fx
    from l2run.engines.jax.step import first_step_integrator

    state = batched_state(state1, n)
    spread = np.random.default_rng(SEED).integers(1, episode_steps, n)
    state = state._replace(step_count=jnp.asarray(spread, state.step_count.dtype))
    first = first_step_integrator(integrator) if graded else None
    wall, cpu, compile_s, traj = _timed_rollout(
        params,
        integrator,
        state,
        steps,
        first,
        reset_pool=fx.course_pool(range(AUTORESET_POOL)),
        max_episode_steps=episode_steps,
    )
    resets = float(np.mean(np.asarray(traj.done)))
    scheme = f"{integrator_label(first)} first step" if graded else "regular first step"
    what = (
        f"JAX batched, lax.scan rollout with autoreset ({scheme}, episodes ≤ {episode_steps} "
        f"steps, {resets:.2%} of env-steps reset)"
    )
    return Row(what, dtype, n, n * steps, wall, cpu, compile_s, integrator.evaluations)


def memory_report(state, compiled, n: int) -> list[str]:
    """Bytes per environment of the state, and XLA's memory estimate of the batched step."""
    from l2run.engines.jax import rollout as fx

    per_env = fx.state_nbytes(state) / n
    lines = [
        f"state: {per_env:,.0f} bytes per environment ({per_env * n / 2**20:,.1f} MiB at N={n})"
    ]
    try:
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
    p.add_argument(
        "--batch-steps",
        type=int,
        default=5,
        help="batched steps timed per N (0: no plain batched rows, the rollouts only)",
    )
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
    p.add_argument(
        "--integrator",
        default=None,
        help="JAX scheme:substeps, or several comma-separated (default: engine's)",
    )
    p.add_argument(
        "--rollout-steps",
        type=int,
        default=0,
        help="also time one jitted lax.scan rollout of this many steps (0: off) per N of "
        "--rollout-sizes",
    )
    p.add_argument(
        "--autoreset-steps",
        type=int,
        default=0,
        help="also time training-like rollouts with autoreset (graded and regular first "
        "step) of this many steps per N of --rollout-sizes (0: off)",
    )
    p.add_argument(
        "--autoreset-first-steps",
        type=lambda s: tuple(v.strip() for v in s.split(",") if v.strip()),
        default=("graded", "regular"),
        help="which autoreset rollouts --autoreset-steps times: graded (the episodes' first "
        "steps by the first-step scheme: more copies of the step to compile), regular "
        "(the regular scheme), or both comma-separated (default)",
    )
    p.add_argument(
        "--episode-steps",
        type=int,
        default=100,
        help="episode length of the autoreset rollouts (default 100: ~1%% of runners reset "
        "per step, plus falls)",
    )
    p.add_argument(
        "--rollout-sizes",
        type=lambda s: tuple(int(v) for v in s.split(",")),
        default=None,
        help="batch sizes for --rollout-steps and --autoreset-steps, comma-separated (default: "
        "the largest N)",
    )
    p.add_argument(
        "--skip-single", action="store_true", help="no single-env timings (GPU: latency-bound)"
    )
    p.add_argument("--skip-opensim", action="store_true", help="no OpenSim (no ratios)")
    p.add_argument(
        "--batch-layout",
        choices=("minor", "major"),
        default=None,
        help="batches: runners last (minor_vmap; CPU default) or first (jax.vmap; GPU default)",
    )
    p.add_argument(
        "--cpu-threads",
        type=int,
        default=None,
        help="XLA CPU threads for the JAX engine (0: one per core; default as the l2run "
        f"command line: ${THREADS_ENV} if set, else 1)",
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: few steps, N=64,256, float64 only (overrides --sizes, --dtypes and "
        "the step counts)",
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
    if args.rollout_sizes is None:
        args.rollout_sizes = (sizes[-1],)
    args.dtypes = [d.strip() for d in args.dtypes.split(",") if d.strip()]
    unknown = set(args.autoreset_first_steps) - {"graded", "regular"}
    if unknown:
        p.error(f"--autoreset-first-steps takes graded and/or regular, got {sorted(unknown)}")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    choose_cpu_threads(args.cpu_threads)  # before JAX starts: it sizes its thread pool once
    import jax
    import jax.numpy as jnp

    from l2run.engines.jax import rollout as fx
    from l2run.engines.jax.params import load_params
    from l2run.engines.jax.step import parse_integrator

    if args.batch_layout is not None:  # for the backend this run uses
        if jax.default_backend() == "cpu":
            fx.CPU_BATCH_LAYOUT = args.batch_layout
        else:
            fx.ACCELERATOR_BATCH_LAYOUT = args.batch_layout
    names = args.integrator.split(",") if args.integrator else [None]
    integrators = [parse_integrator(name) for name in names]
    cores = core_count()
    device = jax.devices()[0]
    print(f"machine: {cpu_name()}, {cores} cores usable; {platform.platform()}")
    print(f"JAX {jax.__version__}, backend {jax.default_backend()}, device {device.device_kind}")
    threads = os.environ.get(THREADS_ENV, "one per core")
    print(f"XLA CPU threads per process: {threads} (--cpu-threads, ${THREADS_ENV})")
    print(f"XLA_FLAGS (loops as single kernels): {os.environ.get('XLA_FLAGS', '')!r}")
    print(
        f"batch layout: {fx.batch_layout()} (runners last: minor_vmap; first: jax.vmap), "
        f"chunks of {fx.runner_chunk(1 << 20, dtype='float64')} (float64) / "
        f"{fx.runner_chunk(1 << 20, dtype='float32')} (float32) runners; obstacle rows per "
        f"batched runner: {obstacle_slots(MAX_OBSTACLES)} (courses of ≤ {MAX_OBSTACLES}, as the "
        "vector env holds them; one runner: 20)"
    )
    for integrator in integrators:
        print(
            f"JAX integrator: {integrator.scheme} × {integrator.substeps} substeps = "
            f"{integrator.evaluations} force evaluations per 0.01 s control step"
        )

    rows: list[Row] = []
    opensim: Row | None = None
    cpu_backend = jax.default_backend() == "cpu"

    def report(row: Row) -> None:
        """Keep a row, and print it at once: a run cut short (a time limit) keeps its rows."""
        rows.append(row)
        print(render_row(row, opensim, cpu_backend), flush=True)

    if not args.skip_opensim and importlib.util.find_spec("opensim") is None:
        print("OpenSim is not installed here (pip install opensim): no OpenSim rows or ratios")
        args.skip_opensim = True
    if not args.skip_opensim:
        opensim = bench_opensim(args.opensim_steps)
    print("\nrows as they finish (the whole table again at the end):\n" + TABLE_HEADER)
    osim_rl: Row | None = None
    if opensim is not None:
        report(opensim)
        report(bench_runenv("opensim", args.opensim_steps))
        osim_rl = bench_osim_rl(args.opensim_steps)
        report(osim_rl)

    memory_lines: list[str] = []
    for dtype in args.dtypes:
        params = fx.cast_floats(load_params(), getattr(jnp, dtype))
        state1 = None
        for integrator in integrators:
            label = integrator_label(integrator)
            if args.skip_single:
                if state1 is None:  # the batches start from a state one step after reset
                    state1 = first_state(params, integrator)
            else:
                single_rows, state1 = bench_jax_single(params, integrator, args.single_steps, dtype)
                single_rows.append(bench_runenv("jax", args.single_steps, integrator, dtype))
                for row in single_rows:
                    report(row)
            for n in args.sizes:
                if args.batch_steps > 0:  # (0: the rollouts only)
                    row, (state, compiled) = bench_jax_batched(
                        params, integrator, state1, n, args.batch_steps, dtype
                    )
                    row.what += f" ({label})"
                    report(row)
                    if n == MEMORY_N:
                        lines = memory_report(state, compiled, n)
                        lines = [f"[{dtype}, {label}] " + s for s in lines]
                        print("\n".join(lines), flush=True)
                        memory_lines += lines
                    del state, compiled
                if args.rollout_steps and n in args.rollout_sizes:
                    row = bench_jax_batched_rollout(
                        params, integrator, state1, n, args.rollout_steps, dtype
                    )
                    row.what += f" ({label})"
                    report(row)
                if args.autoreset_steps and n in args.rollout_sizes:
                    for graded in (g == "graded" for g in args.autoreset_first_steps):
                        row = bench_jax_autoreset_rollout(
                            params,
                            integrator,
                            state1,
                            n,
                            args.autoreset_steps,
                            args.episode_steps,
                            graded,
                            dtype,
                        )
                        report(row)
    print()
    print(render_table(rows, opensim, cpu_backend))
    batched = [r for r in rows if r.n > 1]
    singles = [r for r in rows if r.n == 1 and r.what.startswith("JAX single env")]
    singles = [r for r in singles if "first step" not in r.what]
    if opensim and batched:
        top = max(batched, key=lambda r: r.steps_per_s)
        print(
            f"\nfastest batched: N={top.n} [{top.dtype}] {top.steps_per_s:,.0f} env-steps/s "
            f"= {top.steps_per_s / opensim.steps_per_s:,.0f}× OpenSim (wall clock, whole machine)"
        )
        if cpu_backend:
            best = max(batched, key=lambda r: r.steps_per_cpu_s)
            print(
                f"best per core: N={best.n} [{best.dtype}] {best.steps_per_cpu_s:,.0f} "
                f"env-steps per CPU-second = "
                f"{best.steps_per_cpu_s / opensim.steps_per_cpu_s:,.0f}× OpenSim per core"
                + (
                    f" (for reference, {best.steps_per_cpu_s / osim_rl.steps_per_cpu_s:,.0f}× "
                    "osim-rl 1.5's stepping)"
                    if osim_rl is not None
                    else ""
                )
            )
    if opensim and singles:
        top = max(singles, key=lambda r: r.steps_per_s)
        print(
            f"single env: {top.what} [{top.dtype}] {top.steps_per_s:,.0f} steps/s = "
            f"{top.steps_per_s / opensim.steps_per_s:,.1f}× OpenSim"
        )
    env_rows = {
        r.what.split()[0]: r for r in rows if "RunEnv.step" in r.what and r.dtype == "float64"
    }
    if {"OpenSim", "JAX"} <= set(env_rows):
        jax_env, os_env = env_rows["JAX"], env_rows["OpenSim"]
        print(
            f"RunEnv.step (the seed's API): JAX {jax_env.steps_per_s:,.0f} steps/s = "
            f"{jax_env.steps_per_s / os_env.steps_per_s:,.1f}× OpenSim's RunEnv.step"
        )
    for line in memory_lines:
        print(line)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak resident memory of this run: {rss:,.0f} MiB")


TABLE_HEADER = (
    "| engine | dtype | N | env-steps/s | env-steps/CPU-s | force evals/step | "
    "force evals/CPU-s | × OpenSim | × OpenSim per core | compile s |\n"
    "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"
)


def render_row(r: Row, opensim: Row | None, cpu_backend: bool) -> str:
    """One row of `render_table`."""
    is_cpu = cpu_backend or r.what.startswith("OpenSim")  # OpenSim runs on the CPU anyway
    per_cpu = f"{r.steps_per_cpu_s:,.0f}" if is_cpu else "—"
    evals = str(r.evals) if r.evals else "adaptive"
    evals_rate = f"{r.steps_per_cpu_s * r.evals:,.0f}" if r.evals and is_cpu else "—"
    ratio = per_core = "—"
    if opensim is not None and r is not opensim:
        ratio = f"{r.steps_per_s / opensim.steps_per_s:,.1f}"
        if is_cpu:
            per_core = f"{r.steps_per_cpu_s / opensim.steps_per_cpu_s:,.1f}"
    comp = f"{r.compile_s:.1f}" if r.compile_s is not None else "—"
    return (
        f"| {r.what} | {r.dtype} | {r.n} | {r.steps_per_s:,.0f} | {per_cpu} | {evals} | "
        f"{evals_rate} | {ratio} | {per_core} | {comp} |"
    )


def render_table(rows: list[Row], opensim: Row | None, cpu_backend: bool) -> str:
    """A Markdown table (pasteable into RESULTS.md). Per-core figures use CPU time (CPU only)."""
    return "\n".join([TABLE_HEADER] + [render_row(r, opensim, cpu_backend) for r in rows])


if __name__ == "__main__":
    main()
