"""Replays: every one is a fresh re-simulation of the logged actions, checked step by step
against the graded rewards, so what is shown is what was graded."""

from __future__ import annotations

import html
from typing import Annotated

from fastapi import APIRouter, Path
from fastapi.responses import FileResponse, HTMLResponse

from l2run.grader.routes.deps import ReplaysDep
from l2run.grader.schemas import ReplayCheckOut, error_responses

router = APIRouter(tags=["replays"], responses=error_responses(404, 409, 413, 422, 429))
# Episode ids are the database's 64-bit keys: a larger number is refused (422) rather than
# passed to a driver that cannot bind it.
EpisodeId = Annotated[int, Path(ge=1, le=2**63 - 1, description="an episode's id")]


@router.get("/api/episodes/{episode_id}/replay-check", response_model=ReplayCheckOut)
async def replay_check(episode_id: EpisodeId, service: ReplaysDep) -> ReplayCheckOut:
    """Re-simulate the episode from its logged actions and compare every step's reward."""
    check = await service.check(episode_id)
    return ReplayCheckOut(**{k: getattr(check, k) for k in ReplayCheckOut.model_fields})


@router.get("/replays/{episode_id}/recording.npz", response_class=FileResponse)
async def replay_recording(episode_id: EpisodeId, service: ReplaysDep):
    """The re-simulated episode as an l2run recording (`l2run.render.recording` format)."""
    check = await service.recording(episode_id)
    return FileResponse(
        check.recording,
        media_type="application/octet-stream",
        filename=f"l2run-episode-{episode_id}.npz",
        headers={"X-L2run-Replay-Match": "true" if check.match else "false"},
    )


# Pages for people stay out of the API schema (their errors are JSON, their success is HTML).
@router.get(
    "/replays/{episode_id}",
    response_class=HTMLResponse,
    name="replay_page",
    include_in_schema=False,
)
async def replay_page(episode_id: EpisodeId, service: ReplaysDep) -> HTMLResponse:
    """The episode re-simulated from its logged actions, in the browser viewer."""
    try:
        page, check = await service.html(episode_id)
    except ImportError:  # a build without the render area: show the check and the download
        return HTMLResponse(_check_page(episode_id, await service.check(episode_id)))
    return HTMLResponse(page, headers={"X-L2run-Replay-Match": "true" if check.match else "false"})


def _check_page(episode_id: int, check) -> str:
    verdict = "matches" if check.match else f"DIFFERS from step {check.first_mismatch}"
    return (
        f"<!doctype html><title>Replay {episode_id}</title><h1>Episode {episode_id}</h1>"
        f"<p>Re-simulated {check.steps} logged steps: total reward {check.replayed_total:.6f} "
        f"(graded {check.graded_total:.6f}), {html.escape(verdict)}.</p>"
        f'<p><a href="/replays/{episode_id}/recording.npz">Download the recording</a>.</p>'
    )
