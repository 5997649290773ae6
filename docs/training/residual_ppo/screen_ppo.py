"""Deterministic screen of PPO run directories on a walker (residual or modulation) in the JAX
engine.

All courses of a run in one batch, `imex_stiff` x10 as in training, float64, mean actions:
    python docs/training/residual_ppo/screen_ppo.py RUN_DIR [RUN_DIR ...]
Environment: N courses (40) from seed FIRST (600001), MAXOBS obstacles (3), H steps (1000).
Prints each run's mean distance (final pelvis x, m), falls and the survivors' mean distance.
"""

import os
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

from l2run.course import generate_course
from l2run.engines.jax import step as env_step
from l2run.engines.jax.params import load_params
from l2run.engines.jax.rollout import batch_observe, batch_reset, batch_step, course_arrays
from l2run.train import walker
from l2run.train.ppo_jax import (
    BASE_POLICY_FILE,
    ObsStats,
    action_mean,
    load_run,
    modulation_matrix,
    normalize,
    output_base,
    policy_inputs,
    run_memory,
    steer,
)

jax.config.update("jax_enable_x64", True)
CHUNK = 100  # control steps per jitted scan

n = int(os.environ.get("N", 40))
first = int(os.environ.get("FIRST", 600001))
max_obstacles = int(os.environ.get("MAXOBS", 3))
horizon = int(os.environ.get("H", 1000))
seeds = range(first, first + n)
model = load_params()
integrator = env_step.parse_integrator("imex_stiff:10")
first_integrator = env_step.first_step_integrator(integrator)
courses = [generate_course(np.random.RandomState(s), 2, max_obstacles, seed=s) for s in seeds]


def batched_policy(run: str):
    """(vmapped (memory, obs) -> (memory, excitations) of a run on a walker with mean actions,
    a runner's initial memory)."""
    config, params, stats = load_run(run)
    base = jnp.asarray(walker.WalkerPolicy.load(os.path.join(run, BASE_POLICY_FILE)).params)
    params = jax.tree.map(jnp.asarray, params)
    stats = ObsStats(*(jnp.asarray(a) for a in stats))
    matrix = jnp.asarray(modulation_matrix(config)) if config.modulate else None

    def act(memory, obs):
        x = normalize(stats, policy_inputs(config, obs, memory, xp=jnp))
        if config.modulate:  # the output moves the walker's parameters
            output = action_mean(params, x, output_base(config))
            return steer(config, base, matrix, memory, obs, output, xp=jnp)[:2]
        memory, excitation = walker.control(base, memory, obs, xp=jnp)
        return memory, jnp.clip(action_mean(params, x, excitation), 0, 1)

    return jax.vmap(act), run_memory(config, jnp)


for run in sys.argv[1:]:
    t0 = time.time()
    policy, fresh_memory = batched_policy(run)

    @jax.jit
    def run_chunk(state, obs, memory, policy=policy):
        def body(carry, _):
            s, o, m = carry
            m, a = policy(m, o)
            s, o, _, _ = batch_step(model, s, a, integrator, first_integrator)
            return (s, o, m), None

        return jax.lax.scan(body, (state, obs, memory), None, length=CHUNK)[0]

    obstacles, psoas = course_arrays(courses)
    state = batch_reset(model, jnp.asarray(obstacles), jnp.asarray(psoas))
    obs = batch_observe(model, state)
    memory = jnp.tile(fresh_memory, (n, 1))
    for _ in range(-(-horizon // CHUNK)):
        state, obs, memory = run_chunk(state, obs, memory)
        if bool(jnp.all(state.done)):
            break
    distance = np.asarray(state.q[:, 1])
    steps = np.minimum(np.asarray(state.step_count), horizon)
    survivors = distance[steps >= horizon]
    print(
        f"{run}: mean {distance.mean():.2f} m, falls {(steps < horizon).sum()}/{n}, survivors "
        f"{survivors.mean() if len(survivors) else 0:.2f} m ({time.time() - t0:.0f} s)"
    )
