"""Grader settings, read from the environment (prefix `L2RUN_GRADER_`) or given in code."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_IDLE_TIMEOUT_S = 15 * 60.0
DEFAULT_MAX_BODY_BYTES = 16 * 1024  # an 18-float action is < 1 KiB of JSON


class GraderSettings(BaseSettings):
    """Everything an operator may tune. Round rules live in `rounds.toml`, not here."""

    model_config = SettingsConfigDict(env_prefix="L2RUN_GRADER_", extra="ignore")

    database_url: str = "sqlite:///l2run-grader.db"
    round: int = 1
    rounds_file: Path | None = None  # None: the packaged rounds.toml
    # Seeds are derived from this secret. None: generated once and kept in the database.
    secret: str | None = None
    engine: str = "opensim"
    pool_backend: Literal["process", "ray"] = "process"
    workers: int = Field(default_factory=lambda: os.cpu_count() or 1, ge=1)
    ray_address: str | None = None  # None: start (or join) a local Ray instance
    idle_timeout_s: float = Field(default=DEFAULT_IDLE_TIMEOUT_S, gt=0)
    expiry_check_interval_s: float = Field(default=30.0, gt=0)
    max_body_bytes: int = Field(default=DEFAULT_MAX_BODY_BYTES, ge=256)
    max_open_instances: int = Field(default=4, ge=1)
    # A step slower than this is ended as an integrator failure (the worker is restarted).
    step_timeout_s: float = Field(default=300.0, gt=0)
    # When true, every call after env_create must carry the owner's token (Authorization: Bearer).
    # When false the unguessable instance id is the capability, and a token, if sent, must match.
    require_owner_token: bool = False
    replay_dir: Path = Path("l2run-grader-replays")
