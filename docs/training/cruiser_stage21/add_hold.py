"""Stage 21: the stage-19 runner with the walker's hold set by hand
(docs/training/STAGES.md, "Stage 21").

    python docs/training/cruiser_stage21/add_hold.py OUT.json

writes the runner shipped as `src/l2run/train/pretrained/runner.json`: the stage-19 cruiser
(`docs/training/cruiser_stage19/stage19_mean_gen12.json`) whose leg swap, at the longest step
time, waits up to HOLD_S longer while the swing foot is more than HOLD_CLEARANCE_M up.
"""

from __future__ import annotations

import sys
from pathlib import Path

from l2run.train import walker
from l2run.train.controller_params import group_offsets
from l2run.train.cruiser import CruiserPolicy

STAGE19 = Path(__file__).parents[1] / "cruiser_stage19" / "stage19_mean_gen12.json"
# Above every swing-foot height at a swap on flat ground or low obstacles in the traces
# (<= 0.30 m), below those over tall ones (0.40-0.51 m).
HOLD_CLEARANCE_M = 0.35
HOLD_S = 0.1


def main(out: str) -> None:
    policy = CruiserPolicy.load(STAGE19)  # its walker part predates "hold": neutral appended
    start = group_offsets(walker.PARAM_LAYOUT)["hold"]
    policy.params[start : start + 2] = (HOLD_S, HOLD_CLEARANCE_M)
    step = "python docs/training/cruiser_stage21/add_hold.py src/l2run/train/pretrained/runner.json"
    policy.meta = {
        **policy.meta,
        "commands": [*policy.meta["commands"], step],
        "command": f"{step}  (stage 21, the last of 'commands', on stage 19's file: "
        "docs/training/cruiser_stage19/stage19_mean_gen12.json, whose 'command' made it)",
        "stage": 21,
        "hold": f"walker hold set by hand to ({HOLD_S} s, {HOLD_CLEARANCE_M} m) on the stage-19 "
        "runner (docs/training/cruiser_stage21/add_hold.py); every other value is stage 19's",
        "selected": "OpenSim, validation seeds 500001-500040: 16.10 m with 9/40 falls against "
        "15.87 m with 10/40 for the stage-19 runner (the one course it changes, 500028, no "
        "longer falls); seeds 1-10 unchanged (19.64 m, 0/10), as are the JAX engine's",
    }
    policy.save(out)


if __name__ == "__main__":
    main(sys.argv[1])
