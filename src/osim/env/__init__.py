"""`from osim.env import RunEnv`: the seed's import path, backed by `l2run.env.RunEnv`."""

from __future__ import annotations

from l2run.env.runenv import RunEnv

__all__ = ["RunEnv"]
