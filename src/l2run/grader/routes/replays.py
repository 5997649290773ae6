"""Replays: every one is a fresh re-simulation of the logged actions, checked step by step
against the graded rewards, so what is shown is what was graded."""

from __future__ import annotations

import html
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse, HTMLResponse

from l2run.grader.routes.deps import ReplaysDep
from l2run.grader.schemas import ErrorResponse, ReplayCheckOut

router = APIRouter(tags=["replays"], responses={404: {"model": ErrorResponse}})

# The render area's self-contained viewer; while it is absent the replay page shows the check.
VIEWER_HTML = Path(__file__).resolve().parent.parent.parent / "render" / "viewer.html"


@router.get("/api/episodes/{episode_id}/replay-check", response_model=ReplayCheckOut)
async def replay_check(episode_id: int, service: ReplaysDep) -> ReplayCheckOut:
    """Re-simulate the episode from its logged actions and compare every step's reward."""
    check = await service.check(episode_id)
    return ReplayCheckOut(**{k: getattr(check, k) for k in ReplayCheckOut.model_fields})


@router.get("/replays/{episode_id}/recording.npz", response_class=FileResponse)
async def replay_recording(episode_id: int, service: ReplaysDep):
    """The re-simulated episode as an l2run recording (`l2run.render.recording` format)."""
    check = await service.recording(episode_id)
    return FileResponse(
        check.recording,
        media_type="application/octet-stream",
        filename=f"l2run-episode-{episode_id}.npz",
        headers={"X-L2run-Replay-Match": "true" if check.match else "false"},
    )


@router.get("/replays/{episode_id}", response_class=HTMLResponse, name="replay_page")
async def replay_page(episode_id: int, service: ReplaysDep) -> HTMLResponse:
    recording_url = f"/replays/{episode_id}/recording.npz"
    if VIEWER_HTML.exists():
        page = VIEWER_HTML.read_text()
        hook = f"<script>window.L2RUN_RECORDING_URL = {recording_url!r};</script>"
        return HTMLResponse(page.replace("</head>", hook + "</head>", 1))
    check = await service.check(episode_id)
    verdict = "matches" if check.match else f"DIFFERS from step {check.first_mismatch}"
    body = (
        f"<h1>Episode {episode_id}</h1><p>Re-simulated {check.steps} logged steps: total reward "
        f"{check.replayed_total:.6f} (graded {check.graded_total:.6f}), {html.escape(verdict)}."
        f'</p><p><a href="{recording_url}">Download the recording</a> '
        "(the browser viewer is not installed in this build).</p>"
    )
    return HTMLResponse(f"<!doctype html><title>Replay {episode_id}</title>{body}")
