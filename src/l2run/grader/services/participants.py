"""Participants: add (returns the token once), list, revoke, authenticate."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from l2run.grader.errors import GraderError
from l2run.grader.services.tokens import hash_token, new_token
from l2run.grader.storage.models import Participant, Submission, utcnow

MAX_NAME_LENGTH = 64


@dataclass(frozen=True)
class ParticipantRow:
    name: str
    created_at: datetime
    revoked_at: datetime | None
    submissions: int


def add_participant(session: Session, name: str) -> str:
    """Create a participant; returns the plain token (stored only hashed)."""
    name = name.strip()
    if not name or len(name) > MAX_NAME_LENGTH:
        raise ValueError(f"participant name must be 1..{MAX_NAME_LENGTH} characters")
    if session.scalar(select(Participant).where(Participant.name == name)) is not None:
        raise ValueError(f"participant {name!r} already exists")
    token = new_token()
    session.add(Participant(name=name, token_hash=hash_token(token)))
    session.flush()
    return token


def list_participants(session: Session) -> list[ParticipantRow]:
    counts = (
        select(Submission.participant_id, func.count().label("n"))
        .group_by(Submission.participant_id)
        .subquery()
    )
    rows = session.execute(
        select(Participant, func.coalesce(counts.c.n, 0))
        .outerjoin(counts, counts.c.participant_id == Participant.id)
        .order_by(Participant.id)
    ).all()
    return [ParticipantRow(p.name, p.created_at, p.revoked_at, n) for p, n in rows]


def revoke_participant(session: Session, name: str) -> None:
    participant = session.scalar(select(Participant).where(Participant.name == name))
    if participant is None:
        raise ValueError(f"no participant named {name!r}")
    if participant.revoked_at is None:
        participant.revoked_at = utcnow()


def authenticate(session: Session, token: str) -> Participant:
    """The participant owning `token`; 401 if unknown, 403 if revoked."""
    participant = session.scalar(
        select(Participant).where(Participant.token_hash == hash_token(token))
    )
    if participant is None:
        raise GraderError(401, "unknown token: ask the organisers for one (l2run grader add-user)")
    ensure_not_revoked(participant)
    return participant


def ensure_not_revoked(participant: Participant) -> None:
    if participant.revoked_at is not None:
        raise GraderError(
            403,
            f"token revoked on {participant.revoked_at:%Y-%m-%d %H:%M} UTC; contact the organisers",
        )
