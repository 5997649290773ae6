"""The environment: the seed's `RunEnv` and its gymnasium wrapper."""

from __future__ import annotations

from l2run.env.runenv import RunEnv

__all__ = ["RunEnv"]
