"""l2run: the NIPS 2017 "Learning to Run" environment, rebuilt on OpenSim 4.6 and JAX."""

__version__ = "0.1.0"

from typing import Any

import gymnasium as _gymnasium

# The gymnasium id; the entry point is imported only by gymnasium.make (no OpenSim/JAX here).
if "l2run/Run-v0" not in _gymnasium.registry:
    _gymnasium.register(
        id="l2run/Run-v0",
        entry_point="l2run.env.gym_env:RunGymEnv",
        vector_entry_point="l2run.env.vector:make_vector_env",
        max_episode_steps=1000,
    )


def __getattr__(name: str) -> Any:
    # `from l2run import RunEnv` without importing the environment at `import l2run` time.
    if name == "RunEnv":
        from l2run.env.runenv import RunEnv

        return RunEnv
    raise AttributeError(f"module 'l2run' has no attribute {name!r}")
