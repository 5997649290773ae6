"""The same batched steps on two devices (the CPU and an accelerator), side by side in one run.

    JAX_PLATFORMS=cuda,cpu python benchmarks/device_parity.py          # GPU against CPU
    python benchmarks/device_parity.py --device cpu                   # smoke run: CPU twice

N runners (each on its own course, smooth excitations, the default scheme) take the same steps
on both devices in float64, from the same reset states; the script prints, after steps 1, 10,
30, ... the largest observation difference (absolute, and relative to the observation's scale),
the runners whose `done` differs, and the largest difference of the pelvis's distance run. The
two devices add in different orders, so they agree to round-off at first and, since a runner's
gait is chaotic over contacts, drift apart over many steps: the first step is the check of "the
same code on CPU and GPU" (`--tolerance`, exit status 1 above it), the later ones show how fast
round-off grows. Printed, not asserted in tests: CI has no accelerator.
"""

from __future__ import annotations

import argparse
import sys
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
        help="platform to compare with the CPU (default: the first non-CPU device JAX has)",
    )
    p.add_argument(
        "--tolerance",
        type=float,
        default=1e-9,
        help="largest relative observation difference allowed after the first step",
    )
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import jax

    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp

    sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench_engines beside this file
    from bench_engines import courses, smooth_excitations

    from l2run.engines.jax import rollout as fx
    from l2run.engines.jax.params import load_params

    cpu = jax.devices("cpu")[0]
    if args.device is None:
        others = [d for d in jax.devices() if d.platform != "cpu"]
        if not others:
            print("no accelerator visible to JAX (JAX_PLATFORMS=cuda,cpu?): nothing to compare")
            return 2
        other = others[0]
    else:
        other = jax.devices(args.device)[0]
    print(f"JAX {jax.__version__}: {other.device_kind} ({other.platform}) vs {cpu.device_kind}")

    params = fx.cast_floats(load_params(), jnp.float64)
    obstacles, psoas = fx.course_arrays(courses(args.n))
    actions = smooth_excitations(args.steps, args.n)

    def run(device) -> tuple[list[np.ndarray], list[np.ndarray]]:
        p = jax.device_put(params, device)
        state = fx.batch_reset(
            p, jax.device_put(jnp.asarray(obstacles), device), jax.device_put(psoas, device)
        )
        obs_rows, done_rows = [], []
        for k in range(args.steps):
            state, obs, _, done = fx.batch_step(p, state, jax.device_put(actions[k], device))
            obs_rows.append(np.asarray(obs))
            done_rows.append(np.asarray(done))
        return obs_rows, done_rows

    obs_a, done_a = run(cpu)
    obs_b, done_b = run(other)
    first_rel = None
    print("| after step | max abs Δobs | max rel Δobs | Δdone runners | max Δpelvis x (m) |")
    print("|---:|---:|---:|---:|---:|")
    for k in range(1, args.steps + 1):
        a, b = obs_a[k - 1], obs_b[k - 1]
        diff = np.abs(a - b)
        rel = float(np.max(diff / (1.0 + np.abs(a))))
        if k == 1:
            first_rel = rel
        if k in REPORT_AFTER or k == args.steps:
            n_done = int(np.sum(done_a[k - 1] != done_b[k - 1]))
            dx = float(np.max(np.abs(a[:, PELVIS_X] - b[:, PELVIS_X])))
            print(f"| {k} | {diff.max():.2e} | {rel:.2e} | {n_done} | {dx:.2e} |")
    ok = first_rel is not None and first_rel <= args.tolerance
    verdict = "within" if ok else "ABOVE"
    print(
        f"first step: largest relative difference {first_rel:.2e}, {verdict} the tolerance "
        f"{args.tolerance:.0e} ({args.n} runners, float64)"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
