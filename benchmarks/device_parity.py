"""The same batched steps on two devices (the CPU and an accelerator), side by side in one run.

    JAX_PLATFORMS=cuda,cpu python benchmarks/device_parity.py      # GPU against CPU
    python benchmarks/device_parity.py --device cpu               # smoke run: CPU twice

N runners (each on its own course, smooth excitations, the default scheme) take the same steps
on both devices in float64, from the same reset states; the script prints, after steps 1, 10,
30, ... the largest observation difference (absolute, and relative to the observation's scale),
the runners whose `done` differs, and the largest difference of the pelvis's distance run. The
two devices add in different orders, so they agree to round-off at first and, since a runner's
gait is chaotic over contacts, drift apart over many steps: the first step is the check of "the
same code on CPU and GPU" (`--tolerance`, exit status 1 above it), the later ones show how fast
round-off grows. Printed, not asserted in tests: CI has no accelerator.

The engine picks its batch layout, chunks and compile options by JAX's default backend, so the
CPU half runs in a process of its own with ``JAX_PLATFORMS=cpu`` (the program a CPU user runs:
runners last, in chunks), at the same time as the accelerator half runs in this one. With
``--device cpu`` both halves are that CPU program: a smoke run of the script, not a check.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from l2run.observation import PELVIS_X

# Steps after which the differences are printed (those up to --steps).
REPORT_AFTER = (1, 2, 5, 10, 30, 100, 300, 1000)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=256, help="runners (default 256)")
    p.add_argument("--steps", type=int, default=100, help="control steps (default 100)")
    p.add_argument(
        "--device",
        default=None,
        help="platform to compare with the CPU (default: JAX's default backend, which must not "
        "be the CPU); cpu: a smoke run of the script",
    )
    p.add_argument(
        "--tolerance",
        type=float,
        default=1e-9,
        help="largest relative observation difference allowed after the first step",
    )
    p.add_argument("--record", default=None, help=argparse.SUPPRESS)  # a half's output file
    args = p.parse_args(argv)
    if args.n < 1 or args.steps < 1:
        p.error("--n and --steps must be at least 1")
    return args


def record(n: int, steps: int) -> tuple[np.ndarray, np.ndarray, str]:
    """The observations (steps, n, 41) and done flags (steps, n) of n runners stepped on JAX's
    default backend, and that device's name."""
    import jax

    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp

    sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench_engines beside this file
    from bench_engines import courses, smooth_excitations

    from l2run.engines.jax import rollout as fx
    from l2run.engines.jax.params import load_params

    params = fx.cast_floats(load_params(), jnp.float64)
    obstacles, psoas = fx.course_arrays(courses(n))
    actions = smooth_excitations(steps, n)
    state = fx.batch_reset(params, jnp.asarray(obstacles), jnp.asarray(psoas))
    obs_rows, done_rows = [], []
    for k in range(steps):
        state, obs, _, done = fx.batch_step(params, state, jnp.asarray(actions[k]))
        obs_rows.append(np.asarray(obs))
        done_rows.append(np.asarray(done))
    device = jax.devices()[0]
    return np.stack(obs_rows), np.stack(done_rows), f"{device.device_kind} ({device.platform})"


def save(path: str, obs: np.ndarray, done: np.ndarray, device: str) -> None:
    np.savez(path, obs=obs, done=done, device=np.array(device))


def cpu_half(n: int, steps: int, path: str) -> subprocess.Popen:
    """Start the CPU half in its own process (JAX_PLATFORMS=cpu), writing `path`."""
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    command = [sys.executable, __file__, "--record", path, "--n", str(n), "--steps", str(steps)]
    return subprocess.Popen(command, env=env)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.record is not None:  # one half, in a process of its own
        save(args.record, *record(args.n, args.steps))
        return 0
    smoke = args.device == "cpu"
    if args.device is not None and not smoke:
        os.environ["JAX_PLATFORMS"] = f"{args.device},cpu"
    with tempfile.TemporaryDirectory() as tmp:
        cpu_path, other_path = str(Path(tmp) / "cpu.npz"), str(Path(tmp) / "other.npz")
        cpu_run = cpu_half(args.n, args.steps, cpu_path)
        try:
            if smoke:
                if cpu_half(args.n, args.steps, other_path).wait() != 0:
                    print("the second CPU half failed")
                    return 2
            else:
                import jax

                if jax.default_backend() == "cpu":
                    print("no accelerator visible to JAX (JAX_PLATFORMS=cuda,cpu?): no comparison")
                    return 2
                save(other_path, *record(args.n, args.steps))
            if cpu_run.wait() != 0:
                print("the CPU half failed")
                return 2
        finally:
            if cpu_run.poll() is None:
                cpu_run.kill()
        a, b = np.load(cpu_path), np.load(other_path)
        obs_a, done_a, obs_b, done_b = a["obs"], a["done"], b["obs"], b["done"]
        print(
            f"{b['device']} vs {a['device']}"
            + (" — SMOKE RUN: CPU twice, not a check" if smoke else "")
        )
    first_rel = None
    print("| after step | max abs Δobs | max rel Δobs | Δdone runners | max Δpelvis x (m) |")
    print("|---:|---:|---:|---:|---:|")
    for k in range(1, args.steps + 1):
        x, y = obs_a[k - 1], obs_b[k - 1]
        diff = np.abs(x - y)
        rel = float(np.max(diff / (1.0 + np.abs(x))))
        if k == 1:
            first_rel = rel
        if k in REPORT_AFTER or k == args.steps:
            n_done = int(np.sum(done_a[k - 1] != done_b[k - 1]))
            dx = float(np.max(np.abs(x[:, PELVIS_X] - y[:, PELVIS_X])))
            print(f"| {k} | {diff.max():.2e} | {rel:.2e} | {n_done} | {dx:.2e} |")
    ok = first_rel is not None and first_rel <= args.tolerance
    verdict = "within" if ok else "ABOVE"
    print(
        f"first step: largest relative difference {first_rel:.2e}, {verdict} the tolerance "
        f"{args.tolerance:.0e} ({args.n} runners, float64)"
        + (" (smoke run: no device compared)" if smoke else "")
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
