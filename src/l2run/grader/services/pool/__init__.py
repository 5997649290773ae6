"""Simulation off the event loop: environments live in worker processes (or Ray actors), each
instance pinned to one worker; the grader awaits results without blocking."""

from l2run.grader.services.pool.base import (
    BadAction,
    EnvMissing,
    EpisodeSpec,
    ReplayOutcome,
    SimulationFailed,
    SimulationPool,
    StepOutcome,
)


def make_pool(settings) -> SimulationPool:
    """The backend named by `settings.pool_backend`, sized by `settings.workers`."""
    if settings.pool_backend == "ray":
        from l2run.grader.services.pool.ray_pool import RayPool

        return RayPool(settings.workers, address=settings.ray_address)
    from l2run.grader.services.pool.process_pool import ProcessPool

    return ProcessPool(settings.workers, step_timeout_s=settings.step_timeout_s)


__all__ = [
    "BadAction",
    "EnvMissing",
    "EpisodeSpec",
    "ReplayOutcome",
    "SimulationFailed",
    "SimulationPool",
    "StepOutcome",
    "make_pool",
]
