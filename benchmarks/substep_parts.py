"""CPU time of each part of one runner's `imex_stiff` substep, each part timed on its own.

    python benchmarks/substep_parts.py [--iterations 2000] [--rounds 5] [--dtype float64]
        [--batch 128]

`profile_substep.py` names kernels, but the profiler adds ~1 µs to each of a single runner's
~300 kernels, which inflates the small ones. This times the parts instead: each part (and
the parts it needs, e.g. the frame Jacobians under the path geometry) runs `--iterations`
times inside one jitted `fori_loop`, its coordinates nudged by the loop's carry so that XLA
can neither hoist nor drop it, and the rows print the best of `--rounds` in CPU µs per call.
A part's own cost is its row minus the rows of the parts it needs (named in its label). The
state is the default course's state after its first control step (as `ab_engine.py` uses),
on the course of seed 0 (`bench_engines.courses`). Run it with `PJRT_NPROC=1` (one XLA
thread, as the engine runs). The parts are traced with the engine's single-kernel spellings
(`loop_kernels`), as its steps are. `--batch N` maps each part over N runners on the last axis
(`minor_vmap`, as a CPU batch chunk runs: 64 float64 or 128 float32 runners) and prints CPU µs
per runner. The state is a constant of each compiled loop, and XLA folds what depends on it
alone (the muscles' inputs in the fibre Newton part, for one), so a change that speeds up a
part here may not speed up `batch_step`: confirm with `ab_engine.py --step`
(benchmarks/RESULTS.md, 2026-12-05 session 38).
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp

from l2run.engines.jax import loop_kernels
from l2run.engines.jax.minor_vmap import vmap_minor
from l2run.engines.jax.xla_options import engine_jit

# the loop carry nudges the coordinates by this much per unit: enough to make every call
# depend on the last, far too little to change any branch
NUDGE = 1e-12


def parts(dtype: str) -> tuple[dict, jnp.ndarray]:
    """(label -> function of the coordinates q, q of the timed state)."""
    from bench_engines import courses, first_state, smooth_excitations

    from l2run.engines.jax import contact, implicit_muscles, kinematics, paths, system
    from l2run.engines.jax import rollout as fx
    from l2run.engines.jax.integrate import Continuous
    from l2run.engines.jax.params import load_params
    from l2run.engines.jax.step import parse_integrator

    params64 = load_params()
    params = fx.cast_floats(params64, dtype)
    state = fx.cast_floats(first_state(params64, parse_integrator("imex_stiff:10")), dtype)
    obstacle_rows, psoas_rows = fx.course_arrays(courses(1))
    obstacles = jnp.asarray(obstacle_rows[0], dtype)
    psoas = jnp.asarray(psoas_rows[0], dtype)
    excitation = jnp.asarray(smooth_excitations(1)[0, 0], dtype)
    h = jnp.asarray(0.001, dtype)
    y = Continuous(state.q, state.u, state.activation, state.fiber_length)
    mech = system._mechanics(params, y.q, y.u, obstacles, platform=False)
    path_length = mech.geometry.length + h * mech.geometry.speed
    activation = implicit_muscles.activation_step(params.muscles, y.activation, excitation, h)
    m = params.muscles

    def frames(q):
        return kinematics.model_frame_jacobians(params, q, y.u)

    def path_geometry(q):
        fj = frames(q)
        o, a = fj.frames.origin, fj.frames.angle
        return paths.path_geometry(params.paths, o, a, fj.origin_jac, fj.angle_jac, q, y.u)

    def obstacle_contacts(q):
        fj = frames(q)
        o, a, v, w = fj.frames.origin, fj.frames.angle, fj.origin_jac @ y.u, fj.angle_jac @ y.u
        return contact.contact_forces(params.contact, o, a, v, w, obstacles, platform=False)

    def linearisation(q, rows=obstacles):
        with_frames = mech._replace(fj=frames(q))
        return system._contact_and_ligament_jacobians(params, with_frames, q, y.u, rows)

    def fibre(q):
        start = y.fiber_length + NUDGE * q[0]
        return implicit_muscles.fiber_length_step(
            m, activation, start, excitation, path_length, psoas, h
        )

    def tendon(q):
        fibre_length = y.fiber_length + NUDGE * q[0]
        return implicit_muscles.tendon_force_and_stiffness(
            m, activation, fibre_length, excitation, path_length, psoas, h
        )

    table = {
        "frame Jacobians (F)": frames,
        "F + rigid-body terms": lambda q: system.dynamics.rigid_body_terms(
            params.tree, frames(q), y.u
        ),
        "F + path geometry": path_geometry,
        "F + obstacle contacts (20 slots)": obstacle_contacts,
        "F + mechanics (all of the above, ligaments)": lambda q: system._mechanics(
            params, q, y.u, obstacles, platform=False
        ),
        "F + contact/ligament linearisation": linearisation,
        "F + the same, platform only": lambda q: linearisation(q, obstacles[:0]),
        "fibre Newton solve": fibre,
        "tendon force and stiffness": tendon,
        "whole substep": lambda q: system.imex_substep(
            params, y._replace(q=q), excitation, obstacles, psoas, h, stiff=True
        ),
    }
    return table, y.q


def timed_loop(fn, iterations: int, batch: int = 0):
    """A jitted loop calling `fn` `iterations` times, each call fed by the last; with `batch`,
    `fn` maps over `batch` runners on the last axis (`minor_vmap`, as a CPU batch chunk runs)."""
    if batch:
        fn = vmap_minor(fn, [True])

    @engine_jit
    @loop_kernels.single_kernel_loops()  # the solves and writes as the engine's steps trace them
    def loop(q):
        def body(_, carry):
            out = fn(q + carry * NUDGE)
            leaves = [x for x in jax.tree.leaves(out) if jnp.issubdtype(x.dtype, jnp.floating)]
            # 0 × (the outputs' sum): keeps every output live without changing the carry
            return carry + 0.0 * sum(jnp.sum(x) for x in leaves)

        return jax.lax.fori_loop(0, iterations, body, jnp.zeros((), q.dtype))

    return loop


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--iterations", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--dtype", default="float64", choices=["float64", "float32"])
    ap.add_argument(
        "--batch", type=int, default=0, help="runners per call, on the last axis (0: one)"
    )
    args = ap.parse_args()
    jax.config.update("jax_enable_x64", True)

    table, q = parts(args.dtype)
    if args.batch:  # the same state for every runner, nudged apart so none is folded
        spread = jnp.arange(args.batch, dtype=q.dtype) * NUDGE
        q = q[:, None] + spread
    loops = {label: timed_loop(fn, args.iterations, args.batch) for label, fn in table.items()}
    for loop in loops.values():
        jax.block_until_ready(loop(q))  # compile
    best = {label: float("inf") for label in loops}
    for _ in range(args.rounds):  # in turns, so drifts in machine load hit every part alike
        for label, loop in loops.items():
            start = time.process_time()
            jax.block_until_ready(loop(q))
            per_call = (time.process_time() - start) / args.iterations * 1e6
            best[label] = min(best[label], per_call / max(args.batch, 1))
    who = f"{args.batch} runners (per runner)" if args.batch else "one runner"
    print(f"{who}, imex_stiff substep parts ({args.dtype}), best of {args.rounds}:")
    for label, us in best.items():
        print(f"  {label:46s} {us:7.2f} CPU µs per call")


if __name__ == "__main__":
    main()
