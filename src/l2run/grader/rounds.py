"""Round rules loaded from a TOML file (the packaged `rounds.toml` by default)."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from l2run.engines.base import TIMESTEP_LIMIT

PACKAGED_ROUNDS = Path(__file__).with_name("rounds.toml")
MAX_STEPS_2017 = TIMESTEP_LIMIT  # 10 s of simulated time at 0.01 s per step


@dataclass(frozen=True)
class RoundRules:
    """One round: what a submission consists of and who may submit how often."""

    number: int
    name: str
    trials: int
    difficulty: int
    max_obstacles: int
    max_steps: int = MAX_STEPS_2017
    max_submissions: int | None = None
    submissions_per_24h: int | None = None
    qualify_round: int | None = None
    qualify_score: float | None = None
    seed_scope: Literal["round", "submission"] = "round"


def load_rounds(path: Path | None = None) -> dict[int, RoundRules]:
    """Read `[rounds.N]` tables; raises ValueError naming the bad key."""
    path = Path(path) if path is not None else PACKAGED_ROUNDS
    data = tomllib.loads(path.read_text())
    rounds: dict[int, RoundRules] = {}
    for key, table in data.get("rounds", {}).items():
        number = int(key)
        try:
            rules = RoundRules(number=number, name=table.pop("name", f"Round {number}"), **table)
        except TypeError as exc:
            raise ValueError(f"{path}: round {number}: {exc}") from exc
        if rules.trials < 1 or rules.max_steps < 1:
            raise ValueError(f"{path}: round {number}: trials and max_steps must be >= 1")
        if rules.seed_scope not in ("round", "submission"):
            raise ValueError(f"{path}: round {number}: seed_scope must be 'round' or 'submission'")
        rounds[number] = rules
    if not rounds:
        raise ValueError(f"{path}: no [rounds.N] tables")
    return rounds
