"""The range of a training seed: numpy's RandomState takes seeds in [0, 2**32)."""

from __future__ import annotations

from l2run.env.runenv import MAX_SEED


def check_seed(seed: object, name: str = "seed", highest: int = MAX_SEED) -> int:
    """`seed` as an int in [0, `highest`], else ValueError naming `name`."""
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= highest:
        raise ValueError(f"{name} must be an int in [0, {highest}], got {seed!r}")
    return seed
