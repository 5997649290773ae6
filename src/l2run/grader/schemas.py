"""Request and response bodies of the HTTP API (gym-http-api shapes, plus the leaderboard)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

ACTION_SIZE = 18  # one excitation per muscle, l2run.model.names.MUSCLES order
MAX_TOKEN_LENGTH = 256

# Text the grader stores or echoes: no control characters (PostgreSQL refuses NUL in text).
PRINTABLE = r"^[^\x00-\x1f\x7f]*$"
# A JSON number that is finite. Strict: "0.5" and true are refused, not coerced.
FiniteNumber = Annotated[float, Field(strict=True, allow_inf_nan=False)]


class CreateRequest(BaseModel):
    env_id: str = Field(default="RunEnv", max_length=64, pattern=PRINTABLE)
    token: str = Field(min_length=1, max_length=MAX_TOKEN_LENGTH, pattern=PRINTABLE)
    version: str = Field(default="", max_length=64, pattern=PRINTABLE)


class CreateResponse(BaseModel):
    instance_id: str


class MonitorStartRequest(BaseModel):
    """Accepted for compatibility with gym-http-api clients; the grader records everything."""

    model_config = ConfigDict(extra="allow")
    directory: str | None = Field(default=None, max_length=256)
    force: bool | None = None
    resume: bool | None = None
    video_callable: Any = None


class ResetResponse(BaseModel):
    observation: list[float] | None = Field(
        description="41 values; null once every trial of the submission is finished"
    )


class StepRequest(BaseModel):
    action: list[FiniteNumber] = Field(
        min_length=ACTION_SIZE,
        max_length=ACTION_SIZE,
        description="18 muscle excitations (finite numbers, normally in [0, 1])",
    )
    render: bool = False


class StepResponse(BaseModel):
    observation: list[float] | None
    reward: float
    done: bool
    info: dict[str, Any]


class SubmitResponse(BaseModel):
    reward: float = Field(description="the submission's score: mean total reward of its trials")


class Empty(BaseModel):
    pass


class ErrorResponse(BaseModel):
    message: str


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for refusals: each is {"message": ...} (plus `errors` on 422)."""
    return {code: {"model": ErrorResponse} for code in codes}


class EpisodeOut(BaseModel):
    id: int
    trial: int
    reward: float
    distance: float
    steps: int
    status: str
    error: str | None
    replay_url: str


class LeaderboardRow(BaseModel):
    rank: int
    participant: str
    score: float
    submissions: int
    scored: int
    submitted_at: datetime
    episodes: list[EpisodeOut]


class LeaderboardOut(BaseModel):
    round: int
    name: str
    trials: int
    rows: list[LeaderboardRow]


class ReplayCheckOut(BaseModel):
    episode_id: int
    steps: int
    graded_total: float
    replayed_total: float
    match: bool
    first_mismatch: int | None
