"""The leaderboard: an HTML page for people and the same rows as JSON."""

from __future__ import annotations

import asyncio
from pathlib import Path

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from l2run.grader.errors import GraderError
from l2run.grader.rounds import RoundRules
from l2run.grader.schemas import EpisodeOut, LeaderboardOut, LeaderboardRow, error_responses
from l2run.grader.services.leaderboard import leaderboard
from l2run.grader.storage.database import Database

TEMPLATES = Jinja2Templates(directory=str(Path(__file__).parent.parent / "templates"))
router = APIRouter(tags=["leaderboard"], responses=error_responses(404, 413, 422))


def _db(request: Request) -> Database:
    return request.app.state.db


def _round(request: Request, number: int | None) -> RoundRules:
    rounds: dict[int, RoundRules] = request.app.state.rounds
    number = request.app.state.settings.round if number is None else number
    if number not in rounds:
        raise GraderError(404, f"no round {number}; rounds: {sorted(rounds)}")
    return rounds[number]


async def _board(request: Request, number: int | None) -> LeaderboardOut:
    rules = _round(request, number)
    db = _db(request)

    def query():
        with db.session() as session:
            return leaderboard(session, rules.number)

    entries = await asyncio.to_thread(query)
    rows = [
        LeaderboardRow(
            rank=e.rank,
            participant=e.participant,
            score=e.score,
            submissions=e.submissions,
            scored=e.scored,
            submitted_at=e.submitted_at,
            episodes=[
                EpisodeOut(
                    id=ep.id,
                    trial=ep.trial,
                    reward=ep.reward,
                    distance=ep.distance,
                    steps=ep.steps,
                    status=ep.status,
                    error=ep.error,
                    replay_url=str(request.url_for("replay_page", episode_id=ep.id).path),
                )
                for ep in e.episodes
            ],
        )
        for e in entries
    ]
    return LeaderboardOut(round=rules.number, name=rules.name, trials=rules.trials, rows=rows)


@router.get("/api/leaderboard", response_model=LeaderboardOut)
async def leaderboard_json(
    request: Request, round: int | None = Query(default=None, ge=1, le=1000)
) -> LeaderboardOut:
    """Each participant's best scored submission in the round, ranked by score."""
    return await _board(request, round)


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
@router.get("/leaderboard", response_class=HTMLResponse, include_in_schema=False)
async def leaderboard_page(
    request: Request, round: int | None = Query(default=None, ge=1, le=1000)
) -> HTMLResponse:
    board = await _board(request, round)
    rounds = sorted(request.app.state.rounds.values(), key=lambda r: r.number)
    return TEMPLATES.TemplateResponse(
        request,
        "leaderboard.html",
        {"board": board, "rounds": rounds, "open_round": request.app.state.settings.round},
    )


@router.get("/healthz", include_in_schema=False)
async def healthz() -> dict[str, str]:
    return {"status": "ok"}
