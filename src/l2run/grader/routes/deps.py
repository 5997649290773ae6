"""Shared route dependencies: the services on app.state and the optional owner token."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request

from l2run.grader.services.replays import ReplayService
from l2run.grader.services.sessions import GraderService


def grader(request: Request) -> GraderService:
    return request.app.state.grader


def replays(request: Request) -> ReplayService:
    return request.app.state.replays


def owner_token(authorization: str | None = Header(default=None, max_length=300)) -> str | None:
    """The token from `Authorization: Bearer <token>`, if the client sent one."""
    if not authorization:
        return None
    scheme, _, value = authorization.partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


GraderDep = Annotated[GraderService, Depends(grader)]
ReplaysDep = Annotated[ReplayService, Depends(replays)]
OwnerToken = Annotated[str | None, Depends(owner_token)]
