"""Stage 32: a planner file on OpenSim courses, one episode per seed, recording each episode's
planner decisions beside its result (JSON rewritten after every episode, so a stopped run keeps
what it finished).

    python run_with_decisions.py planner_sighting.json 500101-500110 out.json

The episode is `l2run.train.evaluate.run_episode`'s (difficulty 2, OpenSim); the script only
keeps a handle on the planner to read `decisions` afterwards.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict

from l2run.train import evaluate


def main(policy: str, seeds: str, out: str) -> None:
    loaded = []
    plain_load = evaluate.load_policy

    def keep(spec: str):
        loaded.append(plain_load(spec))
        return loaded[-1]

    evaluate.load_policy = keep
    episodes = []
    for seed in evaluate.parse_seeds(seeds):
        start = time.time()
        result = evaluate.run_episode(policy, "opensim", 2, seed)
        decisions = [asdict(d) for d in loaded[-1].policy.decisions]
        episodes.append({**asdict(result), "decisions": decisions})
        print(seed, f"{result.distance:.2f} m", result.steps, f"{time.time() - start:.0f} s")
        with open(out, "w") as f:
            json.dump(
                {"policy": policy, "engine": "opensim", "difficulty": 2, "episodes": episodes},
                f,
                indent=1,
            )


if __name__ == "__main__":
    main(*sys.argv[1:4])
