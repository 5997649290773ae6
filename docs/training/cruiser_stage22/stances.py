"""Stage 22: every stance of a policy's OpenSim episodes, and whether its foot rested on an
obstacle (docs/training/STAGES.md, "Stage 22").

    python docs/training/cruiser_stage22/stances.py POLICY.json OUT.json SEED...

For each stance (the walker's stance leg, from the swap that starts it to the next): its start
time (s), the stance ankle's x (m, ground frame) 0.05 s in, and the stance foot's lowest
clearance over the stance (m; `walker.foot_clearance`: about 0 on flat ground, above 0.02 m
when the foot never came down off an obstacle).
"""

from __future__ import annotations

import json
import sys

import numpy as np

from l2run.env.runenv import RunEnv
from l2run.train import walker
from l2run.train.gait import CONTROL_STEP_S
from l2run.train.gait_search import load_controller_policy

DIFFICULTY = 2
MAX_OBSTACLES = 3
SAMPLE_STEPS = 5  # the stance ankle's x is read this many control steps into the stance


def episode_stances(env: RunEnv, policy, seed: int) -> dict:
    """One episode: its length, whether it fell, the course and the stances."""
    obs = np.asarray(env.reset(difficulty=DIFFICULTY, seed=seed))
    policy.reset()
    stances: list[dict] = []
    done, k = False, 0
    while not done:
        leg = int(policy.memory[walker.MEMORY_LAYOUT.index("stance_left")] > 0.5)
        if not stances or stances[-1]["leg"] != leg:
            stances.append({"t0": round(k * CONTROL_STEP_S, 2), "leg": leg, "x": [], "clear": []})
        stances[-1]["x"].append(float(obs[walker.OBS_TALUS_X[leg]]))
        stances[-1]["clear"].append(float(walker.foot_clearance(obs, leg)))
        obs, _reward, done, _info = env.step(policy.act(obs))
        obs = np.asarray(obs)
        k += 1
    rows = [
        {
            "t0": s["t0"],
            "leg": "RL"[s["leg"]],
            "talus_x": round(s["x"][min(SAMPLE_STEPS, len(s["x"]) - 1)], 3),
            "min_clear": round(min(s["clear"]), 3),
            "steps": len(s["x"]),
        }
        for s in stances
    ]
    tops = [[round(x, 3), round(y + r, 3), round(r, 3)] for x, y, r in env.course.obstacles]
    return {"steps": k, "fell": env.is_pelvis_too_low(), "obstacles": tops, "stances": rows}


def main(policy_path: str, out: str, *seeds: str) -> None:
    policy = load_controller_policy(policy_path)
    env = RunEnv(visualize=False, engine="opensim", max_obstacles=MAX_OBSTACLES)
    result = {}
    for seed in map(int, seeds):
        result[seed] = episode_stances(env, policy, seed)
        print(seed, result[seed]["steps"], result[seed]["stances"][-3:], flush=True)
    with open(out, "w") as f:
        json.dump(result, f)


if __name__ == "__main__":
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    main(*sys.argv[1:])
