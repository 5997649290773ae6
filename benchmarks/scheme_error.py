"""One control step's error of JAX stepping schemes along the pretrained cruiser's gait.

    python benchmarks/scheme_error.py [--reference imex_stiff:40]
        [--schemes imex_stiff:5,imex_stiff:6,imex_stiff:8,imex_stiff:10,imex_stiff:20]
        [--seeds 1,2] [--steps 300]

The issue's lever for throughput is the number of force evaluations per 0.01 s control step;
what it costs is accuracy. Closed-loop distances say whether a gait survives a scheme, but they
are chaotic (a seed or two either way). This measures the error itself: the cruiser
(`pretrained/runner.json`) walks each seed's difficulty-2 course in the JAX engine under
`--reference`, and from every state it visits (after the episode's first step) each scheme takes
one control step with the cruiser's excitations; the table compares the end states with the
reference's own step from the same state: RMS and largest error of the coordinates (m or rad)
and speeds (m/s or rad/s), mean activation and fibre-length errors, and the share of the
coordinates' squared error in the worst 5 % of the steps (heel strikes: where the error
concentrates). Float64, one process; no timing.
"""

from __future__ import annotations

import argparse

import jax
import jax.numpy as jnp
import numpy as np

WORST_SHARE = 0.05  # the fraction of steps whose share of the squared error is reported


def gait_states(reference: str, seed: int, steps: int):
    """(states stacked on a leading axis, excitations (n, 18)) the cruiser visits on `seed`'s
    course under `reference`, its first step left out (it runs the first-step scheme)."""
    import gymnasium as gym

    import l2run  # noqa: F401  registers the gymnasium id
    from l2run.engines.jax.step import parse_integrator
    from l2run.train.evaluate import load_policy, pretrained_cruiser_path

    policy = load_policy(str(pretrained_cruiser_path()))
    base = gym.make("l2run/Run-v0", engine="jax", integrator=parse_integrator(reference))
    env = policy.wrap(base)
    engine = base.unwrapped.run_env.engine
    obs, _ = env.reset(seed=seed, options={"difficulty": 2})
    policy.reset()
    states, excitations = [], []
    for k in range(steps):
        action = np.asarray(policy.act(obs), float)
        if k > 0:
            states.append(engine.state)
            excitations.append(np.clip(action, 0.0, 1.0))
        obs, _reward, terminated, truncated, _info = env.step(action)
        if terminated or truncated:
            break
    env.close()
    return jax.tree.map(lambda *xs: jnp.stack(xs), *states), jnp.asarray(np.array(excitations))


def one_step(params, scheme: str):
    """Jitted: a batch of states and excitations -> the states one control step later."""
    from l2run.engines.jax import step as env_step

    integrator = env_step.parse_integrator(scheme)

    def advance(state, excitation):
        # vmapped: the batched spellings (scatters, LAPACK), as `step.step` advises
        return env_step.step(params, state, excitation, integrator, None, False)[0]

    return jax.jit(jax.vmap(advance))


def errors(result, reference) -> dict[str, float]:
    dq = np.abs(np.asarray(result.q - reference.q))
    du = np.abs(np.asarray(result.u - reference.u))
    per_step = np.sum(dq * dq, axis=1)
    worst = max(1, int(round(WORST_SHARE * len(per_step))))
    return {
        "q rms": float(np.sqrt(np.mean(dq * dq))),
        "q max": float(dq.max()),
        "u rms": float(np.sqrt(np.mean(du * du))),
        "u max": float(du.max()),
        "activation": float(np.mean(np.abs(np.asarray(result.activation - reference.activation)))),
        "fibre µm": float(
            1e6 * np.mean(np.abs(np.asarray(result.fiber_length - reference.fiber_length)))
        ),
        "worst 5 % share": float(np.sort(per_step)[-worst:].sum() / per_step.sum()),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reference", default="imex_stiff:40")
    ap.add_argument(
        "--schemes", default="imex_stiff:5,imex_stiff:6,imex_stiff:8,imex_stiff:10,imex_stiff:20"
    )
    ap.add_argument("--seeds", default="1,2")
    ap.add_argument("--steps", type=int, default=300)
    args = ap.parse_args()
    jax.config.update("jax_enable_x64", True)
    from l2run.engines.jax.params import load_params
    from l2run.engines.jax.step import parse_integrator

    params = load_params()
    parts = [gait_states(args.reference, int(s), args.steps) for s in args.seeds.split(",")]
    states = jax.tree.map(lambda *xs: jnp.concatenate(xs), *[p[0] for p in parts])
    excitations = jnp.concatenate([p[1] for p in parts])
    reference = one_step(params, args.reference)(states, excitations)
    print(
        f"{excitations.shape[0]} states of the cruiser's gait (seeds {args.seeds}), "
        f"one control step each, against {args.reference}:\n"
    )
    rows = {}
    for scheme in args.schemes.split(","):
        rows[scheme] = errors(one_step(params, scheme)(states, excitations), reference)
    columns = list(next(iter(rows.values())))
    print("| scheme | evaluations/step | " + " | ".join(columns) + " |")
    print("|---|---:|" + "---:|" * len(columns))
    for scheme, row in rows.items():
        evaluations = parse_integrator(scheme).evaluations
        cells = " | ".join(f"{v:.2e}" if "share" not in k else f"{v:.2f}" for k, v in row.items())
        print(f"| {scheme} | {evaluations} | {cells} |")


if __name__ == "__main__":
    main()
