"""Stage 30's prototype of the planner (docs/training/STAGES.md, "Stage 30"), kept because it
ran the validation episodes in prototype_opensim_500001-500040.json; `l2run.train.planner` is
the packaged version (the same rules; its programs are compiled with the engine's XLA options,
so its episodes can differ from these in the last digits and, on a chaotic course, further).

    python docs/training/planner_stage30/prototype.py 500001,500003 out.json

A model-predictive guard around the cruiser runner.

Every CHECK steps the JAX engine predicts the runner's next H steps from the current state
(q, u from the observation; muscle states from a shadow integration of the same excitations;
obstacles seen so far). If it predicts a fall, K alternative plans (offsets to the walker's
parameters held for a while) are predicted too and the one that survives longest is taken.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from l2run.engines.base import FALL_HEIGHT_M
from l2run.engines.jax.params import load_params
from l2run.engines.jax.step import DEFAULT_INTEGRATOR, FIRST_STEP_INTEGRATOR, observe
from l2run.engines.jax.step import step as jstep
from l2run.observation import pad_obstacles
from l2run.train import cruiser, walker
from l2run.train.cruiser import CruiserPolicy

P = load_params()
W = dict(
    (n, i) for i, n in enumerate([f"{g}{k}" for g, s in walker.PARAM_LAYOUT for k in range(s)])
)


def control_mod(params, memory, obs, delta, xp=np):
    """cruiser.control with `delta` added to the blended walker parameters."""
    t_clear, t_episode = memory[cruiser.T_CLEAR], memory[cruiser.T_EPISODE]
    wp = cruiser.blend(params, t_clear, t_episode, xp) + delta
    walker_memory, action = walker.control(wp, memory[: walker.MEMORY_SIZE], obs, xp)
    passed = walker_memory[walker.MEMORY_PASSED]
    heels_x = xp.minimum(obs[walker.OBS_TALUS_X[0]], obs[walker.OBS_TALUS_X[1]])
    none_ahead = obs[walker.OBS_OBSTACLE_R] <= 0.0
    clear = none_ahead & (heels_x > passed[0] + passed[2] + cruiser.CLEAR_MARGIN_M)
    t_clear = xp.where(clear, t_clear + 0.01, 0.0)
    return xp.concatenate([walker_memory, xp.reshape(t_clear, (1,))]), action


def make_predict(H):
    def one(cparams, state, memory, delta, hold):
        def body(carry, k):
            s, m = carry
            obs = observe(P, s)
            d = jnp.where(k < hold, delta, 0.0 * delta)
            m2, a = control_mod(cparams, m, obs, d, xp=jnp)
            s2, _, _, _ = jstep(P, s, a, DEFAULT_INTEGRATOR, None)
            return (s2, m2), s2.q[2]

        (s, m), py = jax.lax.scan(body, (state, memory), jnp.arange(H))
        fell = s.done & (s.q[2] < FALL_HEIGHT_M)
        first = jnp.argmax(py < FALL_HEIGHT_M)
        survive = jnp.where(fell, first, H)
        return survive, s.q[1]

    return jax.jit(jax.vmap(one, in_axes=(None, None, None, 0, 0)))


@jax.jit
def shadow_step(state, action):
    s2, _, _, _ = jstep(P, state, action, DEFAULT_INTEGRATOR, FIRST_STEP_INTEGRATOR)
    return s2


def default_candidates():
    n = walker.N_PARAMS
    rows, holds = [], []
    for name, amounts in (
        ("swing_hip0", (0.1, 0.2)),
        ("torso0", (0.05, 0.1)),
        ("swing_knee0", (0.2,)),
        ("push0", (0.3,)),
        ("timing1", (0.05,)),
        ("stance_knee0", (0.1,)),
    ):
        for a in amounts:
            for sign in (1, -1):
                for hold in (30, 100):
                    d = np.zeros(n)
                    d[W[name]] = sign * a
                    rows.append(d)
                    holds.append(hold)
    return np.array(rows), np.array(holds)


class Planner:
    def __init__(self, path, H=150, check=10, candidates=None, verbose=False):
        self.base = CruiserPolicy.load(path)
        self.params = jnp.asarray(self.base.params)
        self.H, self.check = H, check
        self.deltas, self.holds = candidates or default_candidates()
        self.pred = make_predict(H)
        self.verbose = verbose
        self.reset()

    def reset(self):
        self.memory = cruiser.initial_memory()
        self.state = None
        self.seen = []
        self.delta = np.zeros(walker.N_PARAMS)
        self.hold = 0
        self.t = 0
        self.log = []

    def _sync(self, obs):
        q = np.concatenate([obs[0:3], obs[6:12]])
        u = np.concatenate([obs[3:6], obs[12:18]])
        if obs[40] > 0:
            x = obs[1] + obs[38]
            if not any(abs(x - s[0]) < 1e-6 for s in self.seen):
                self.seen.append((x, obs[39], obs[40]))
        obst = jnp.asarray(pad_obstacles(np.array(self.seen).reshape(-1, 3)))
        psoas = jnp.asarray([obs[36], obs[37]])
        if self.state is None:
            from l2run.engines.jax.step import reset

            self.state = reset(P, obst, psoas)
        self.state = self.state._replace(
            q=jnp.asarray(q),
            u=jnp.asarray(u),
            obstacles=obst,
            psoas=psoas,
            last_pelvis_x=jnp.asarray(q[1]),
            done=jnp.zeros((), bool),
        )

    def act(self, obs):
        obs = np.asarray(obs, float)
        self._sync(obs)
        if self.t > 0 and self.t % self.check == 0:
            cur = (self.delta[None], np.array([self.hold]))
            s, x = self.pred(
                self.params,
                self.state,
                jnp.asarray(self.memory),
                jnp.asarray(cur[0]),
                jnp.asarray(cur[1]),
            )
            s_cur = int(s[0])
            if s_cur < self.H:
                ss, xs = self.pred(
                    self.params,
                    self.state,
                    jnp.asarray(self.memory),
                    jnp.asarray(self.deltas),
                    jnp.asarray(self.holds),
                )
                ss, xs = np.asarray(ss), np.asarray(xs)
                best = int(np.lexsort((-xs, -ss))[0])
                entry = (self.t, s_cur, int(ss[best]), best, int((ss == self.H).sum()))
                if ss[best] > s_cur:
                    self.delta, self.hold = self.deltas[best].copy(), int(self.holds[best])
                self.log.append(entry)
                if self.verbose:
                    print(
                        "  t",
                        self.t,
                        "alarm: current survives",
                        s_cur,
                        "best",
                        entry[2],
                        "cand",
                        best,
                        "safe cands",
                        entry[4],
                        flush=True,
                    )
        d = self.delta if self.hold > 0 else np.zeros_like(self.delta)
        self.hold = max(self.hold - 1, 0)
        self.memory, action = control_mod(np.asarray(self.base.params), self.memory, obs, d)
        self.state = shadow_step(self.state, jnp.asarray(action))
        self.state = self.state._replace(step_count=jnp.asarray(self.t + 1, jnp.int32))
        self.t += 1
        return action


def main(seeds: str, out: str) -> None:
    import json
    import time

    from l2run.env.runenv import RunEnv

    planner = Planner("src/l2run/train/pretrained/runner.json", verbose=True)
    env = RunEnv(engine="opensim")
    episodes = []
    for seed in [int(s) for s in seeds.split(",")]:
        t0 = time.time()
        obs = env.reset(difficulty=2, seed=seed)
        planner.reset()
        done, n = False, 0
        while not done:
            obs, _, done, _ = env.step(planner.act(obs))
            n += 1
        episodes.append(
            dict(seed=seed, distance=float(obs[1]), steps=n, fell=n < 1000, log=planner.log)
        )
        print(seed, "distance", round(float(obs[1]), 2), "steps", n, f"{time.time() - t0:.0f}s")
        json.dump(episodes, open(out, "w"))


if __name__ == "__main__":
    import sys

    main(*sys.argv[1:3])
