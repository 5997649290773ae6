"""The gym-http-api routes the seed's client speaks, under /v1/envs/."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Path

from l2run.grader.routes.deps import GraderDep, OwnerToken
from l2run.grader.schemas import (
    CreateRequest,
    CreateResponse,
    Empty,
    MonitorStartRequest,
    ResetResponse,
    StepRequest,
    StepResponse,
    SubmitResponse,
    error_responses,
)

router = APIRouter(
    prefix="/v1/envs",
    tags=["envs"],
    responses=error_responses(400, 401, 403, 404, 409, 410, 413, 422, 429),
)
# Ids are `secrets.token_urlsafe` strings: anything else is refused (422) before a lookup.
InstanceId = Annotated[
    str,
    Path(
        min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$", description="from POST /v1/envs/"
    ),
]


@router.post("/", response_model=CreateResponse)
async def env_create(body: CreateRequest, service: GraderDep) -> CreateResponse:
    """Start a submission for the open round; the token identifies the participant."""
    instance_id = await service.create(body.token, body.env_id, body.version)
    return CreateResponse(instance_id=instance_id)


@router.post("/{instance_id}/monitor/start/", response_model=Empty)
async def monitor_start(
    instance_id: InstanceId,
    token: OwnerToken,
    service: GraderDep,
    body: Annotated[MonitorStartRequest | None, Body()] = None,
) -> Empty:
    """Compatibility no-op: every step is logged anyway."""
    await service.monitor_start(instance_id, token)
    return Empty()


@router.post("/{instance_id}/reset/", response_model=ResetResponse)
async def env_reset(
    instance_id: InstanceId,
    token: OwnerToken,
    service: GraderDep,
) -> ResetResponse:
    """Start the next trial; observation is null once all trials are finished."""
    return ResetResponse(observation=await service.reset(instance_id, token))


@router.post("/{instance_id}/step/", response_model=StepResponse)
async def env_step(
    body: StepRequest,
    instance_id: InstanceId,
    token: OwnerToken,
    service: GraderDep,
) -> StepResponse:
    """Advance the running trial by 0.01 s. An integrator failure ends the trial (done=true,
    info.error) and still answers 200."""
    reply = await service.step(instance_id, token, list(body.action))
    return StepResponse(
        observation=reply.observation, reward=reply.reward, done=reply.done, info=reply.info
    )


@router.post("/{instance_id}/monitor/close/", response_model=SubmitResponse)
async def monitor_close(
    instance_id: InstanceId,
    token: OwnerToken,
    service: GraderDep,
) -> SubmitResponse:
    """Submit: score = mean total reward of the trials, recorded as the submission closes."""
    return SubmitResponse(reward=await service.submit(instance_id, token))


@router.post("/{instance_id}/close/", response_model=Empty)
async def env_close(
    instance_id: InstanceId,
    token: OwnerToken,
    service: GraderDep,
) -> Empty:
    """Release the instance; an unscored one counts as abandoned."""
    await service.close(instance_id, token)
    return Empty()
