"""Stage 30's feasibility probe (docs/training/STAGES.md, "Stage 30"): does the JAX engine,
started from OpenSim's state, predict the runner's falls in OpenSim?

    python docs/training/planner_stage30/probe.py 500009,500012,500040 [HORIZON]

runs the shipped cruiser in OpenSim on each course, then from OpenSim's full state (coordinates,
speeds, activations, fibre lengths; the whole course's obstacles) at every 20th step predicts the
next HORIZON (150) steps with the JAX engine, and prints the step at which the prediction falls
next to the step OpenSim fell at (probe_opensim.log), and the prediction's largest pelvis-height
error over its first 50 steps.
"""

import json
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

from l2run.engines.jax.params import load_params
from l2run.engines.jax.state import EnvState
from l2run.engines.jax.step import DEFAULT_INTEGRATOR, observe
from l2run.engines.jax.step import step as jstep
from l2run.env.runenv import RunEnv
from l2run.observation import pad_obstacles
from l2run.train import cruiser
from l2run.train.cruiser import CruiserPolicy

RUNNER = "src/l2run/train/pretrained/runner.json"
H = int(sys.argv[2]) if len(sys.argv) > 2 else 150
P = load_params()


def one(cparams, state, memory):
    def body(carry, _):
        s, m = carry
        obs = observe(P, s)
        m2, a = cruiser.control(cparams, m, obs, xp=jnp)
        s2, _, _, _ = jstep(P, s, a, DEFAULT_INTEGRATOR, None)
        return (s2, m2), (s2.q[2], s2.done)

    (s, m), (py, done) = jax.lax.scan(body, (state, memory), None, length=H)
    return py, done


predict = jax.jit(jax.vmap(one, in_axes=(None, 0, 0)))


def osim_episode(seed):
    env = RunEnv(engine="opensim")
    obs = env.reset(difficulty=2, seed=seed)
    pol = CruiserPolicy.load(RUNNER)
    rec = []
    done = False
    while not done:
        q, u = env.engine.q_u()
        rec.append(
            dict(
                q=q,
                u=u,
                a=env.engine.activations(),
                f=env.engine.fiber_lengths(),
                mem=pol.memory,
                py=q[2],
            )
        )
        obs, r, done, info = env.step(pol.act(np.array(obs)))
    return env, rec, pol


def state_at(env, rec, k):
    r = rec[k]
    return EnvState(
        q=jnp.asarray(r["q"]),
        u=jnp.asarray(r["u"]),
        activation=jnp.asarray(r["a"]),
        fiber_length=jnp.asarray(r["f"]),
        time=jnp.asarray(k * 0.01),
        step_count=jnp.asarray(k, jnp.int32),
        last_pelvis_x=jnp.asarray(r["q"][1]),
        obstacles=jnp.asarray(pad_obstacles(env.course.obstacles)),
        psoas=jnp.asarray(env.course.psoas, float),
        done=jnp.zeros((), bool),
    )


out = {}
for seed in [int(s) for s in sys.argv[1].split(",")]:
    t0 = time.time()
    env, rec, pol = osim_episode(seed)
    n = len(rec)
    fell = n < 1000
    ks = [k for k in range(20, n, 20)]
    states = [state_at(env, rec, k) for k in ks]
    batch = jax.tree.map(lambda *x: jnp.stack(x), *states)
    mems = jnp.stack([jnp.asarray(rec[k]["mem"]) for k in ks])
    py, done = predict(jnp.asarray(pol.params), batch, mems)
    py, done = np.asarray(py), np.asarray(done)
    rows = []
    for i, k in enumerate(ks):
        d = np.flatnonzero(done[i] & (py[i] < 0.65))
        pf = int(k + d[0] + 1) if d.size else None
        # OpenSim pelvis height over the same horizon
        true = [rec[j]["py"] for j in range(k + 1, min(n, k + H + 1))]
        err = np.abs(py[i][: len(true)] - np.array(true))
        rows.append((k, pf, float(err[:50].max()) if len(true) else None))
    print(seed, "osim steps", n, "fell", fell, f"{time.time() - t0:.0f}s", flush=True)
    for k, pf, e in rows:
        print(f"  from {k}: JAX fall at {pf}  max|dy| first 50: {e}")
    out[seed] = dict(n=n, rows=rows)
print(json.dumps(out))
