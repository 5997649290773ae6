"""Stage 31 diagnosis: the stage-30 planner (the shipped settings without a look horizon) on one
OpenSim course; at each look for speed it also predicts every candidate for 300 steps (survival,
end x, lowest pelvis y). Writes the per-step pelvis (x, y, vx), the decisions and those
predictions to a JSON file.

    python diag.py 500013 d500013.json
"""

import dataclasses
import functools
import json
import sys
import time

import gymnasium as gym
import jax
import jax.numpy as jnp
import numpy as np

import l2run  # noqa: F401  registers the gymnasium id
from l2run.engines.base import TIMESTEP_LIMIT
from l2run.train import cruiser
from l2run.train import planner as planner_module
from l2run.train.evaluate import pretrained_path

LOOK = 300  # control steps each candidate is predicted for here
PELVIS_X, PELVIS_Y = 1, 2  # indices in q and in the observation
PELVIS_VX = 4  # index in the observation


@functools.lru_cache(maxsize=2)
def predictor(horizon: int, integrator: str):
    """As planner.plan_predictor, also returning the lowest pelvis height before a fall (m)."""
    from l2run.engines.jax.params import load_params
    from l2run.engines.jax.step import observe, parse_integrator, step

    model, scheme = load_params(), parse_integrator(integrator)

    def one(params, state, memory, offset, hold):
        def body(carry, k):
            s, m = carry
            offset_k = jnp.where(k < hold, offset, 0.0)
            m, action = cruiser.control(params, m, observe(model, s), xp=jnp, offset=offset_k)
            s, _, _, _ = step(model, s, action, scheme, None)
            return (s, m), (s.done & (s.step_count < TIMESTEP_LIMIT), s.q[PELVIS_Y])

        (end, _), (ended, ys) = jax.lax.scan(body, (state, memory), jnp.arange(horizon))
        survived = jnp.where(jnp.any(ended), jnp.argmax(ended), horizon)
        lowest = jnp.min(jnp.where(jnp.arange(horizon) < survived, ys, jnp.inf))
        return survived, end.q[PELVIS_X], lowest

    return jax.jit(jax.vmap(one, in_axes=(None, None, None, 0, 0)))


class Diagnosed(planner_module.PlannerPolicy):
    """The planner, predicting every candidate for LOOK steps after each look for speed."""

    def reset(self) -> None:
        super().reset()
        self.extra: list[dict] = []

    def _check(self, state, speed: bool) -> None:
        n = len(self._decisions)
        super()._check(state, speed)
        if len(self._decisions) > n and self._decisions[-1].reason == "speed":
            predict = predictor(LOOK, self.settings.integrator)
            survived, end_x, lowest = predict(
                jnp.asarray(self.base.params),
                state,
                jnp.asarray(self._memory),
                jnp.asarray(self._offsets),
                jnp.asarray(self._holds),
            )
            self.extra.append(
                {
                    "step": self._steps,
                    "surv300": np.asarray(survived).tolist(),
                    "end300": np.round(np.asarray(end_x), 3).tolist(),
                    "miny": np.round(np.asarray(lowest), 3).tolist(),
                }
            )


def main() -> None:
    seed, out = int(sys.argv[1]), sys.argv[2]
    shipped = planner_module.PlannerPolicy.load(pretrained_path())
    policy = Diagnosed(shipped.base, dataclasses.replace(shipped.settings, look_horizon=0))
    env = gym.make("l2run/Run-v0", engine="opensim", max_obstacles=3)
    obs, _ = env.reset(seed=seed, options={"difficulty": 2})
    policy.reset()
    trajectory, start, done = [], time.time(), False
    while not done:
        obs, _, terminated, truncated, _ = env.step(policy.act(obs))
        done = terminated or truncated
        trajectory.append([round(float(obs[i]), 3) for i in (PELVIS_X, PELVIS_Y, PELVIS_VX)])
    print(seed, len(trajectory), trajectory[-1], f"{time.time() - start:.0f}s")
    decisions = [dataclasses.asdict(d) for d in policy.decisions]
    record = {"seed": seed, "traj": trajectory, "decisions": decisions, "extra": policy.extra}
    with open(out, "w") as f:
        json.dump(record, f)


if __name__ == "__main__":
    main()
