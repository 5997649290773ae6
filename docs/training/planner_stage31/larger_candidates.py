"""Stage 31: does a larger candidate set save the obstacle-phase falls? The shipped planner with
its eight changes plus each at 2.5x its amount (64 candidates, for alarms and looks for speed
alike), in OpenSim, up to step 600 on each course given.

    python larger_candidates.py 500064,500040,500041
"""

import dataclasses
import sys

import gymnasium as gym

import l2run  # noqa: F401  registers the gymnasium id
from l2run.train.evaluate import pretrained_path
from l2run.train.planner import DEFAULT_CHANGES, PlannerPolicy

STEPS = 600  # control steps per course: past the obstacle phase
SCALE = 2.5  # the larger changes' multiple of the given amounts


def main() -> None:
    shipped = PlannerPolicy.load(pretrained_path())
    changes = DEFAULT_CHANGES + tuple((n, i, SCALE * a) for n, i, a in DEFAULT_CHANGES)
    policy = PlannerPolicy(shipped.base, dataclasses.replace(shipped.settings, changes=changes))
    for seed in [int(s) for s in sys.argv[1].split(",")]:
        env = gym.make("l2run/Run-v0", engine="opensim", max_obstacles=3)
        obs, _ = env.reset(seed=seed, options={"difficulty": 2})
        policy.reset()
        terminated, steps = False, 0
        while not terminated and steps < STEPS:
            obs, _, terminated, _, _ = env.step(policy.act(obs))
            steps += 1
        taken = [
            (d.step, d.survives, d.best_survives, d.candidate)
            for d in policy.decisions
            if d.reason == "fall" and d.taken
        ]
        x, fell = round(float(obs[1]), 2), bool(terminated)
        print(seed, "steps", steps, "x", x, "fell", fell, "alarms taken", taken[:12], flush=True)


if __name__ == "__main__":
    main()
