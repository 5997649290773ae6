"""Leaderboard: each participant's best scored submission in a round, ranked."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from l2run.grader.storage.models import Participant, Submission, SubmissionStatus


@dataclass(frozen=True)
class EpisodeEntry:
    id: int
    trial: int  # 1-based
    reward: float
    distance: float  # pelvis travel along x, m
    steps: int
    status: str
    error: str | None


@dataclass(frozen=True)
class LeaderboardEntry:
    rank: int
    participant: str
    score: float
    submissions: int  # all submissions made in the round (what limits count)
    scored: int
    submitted_at: datetime
    episodes: list[EpisodeEntry]


def leaderboard(session: Session, round_number: int) -> list[LeaderboardEntry]:
    """Best finished submission per (non-revoked) participant; ties go to the earlier one."""
    finished = session.scalars(
        select(Submission)
        .join(Participant)
        .where(
            Submission.round == round_number,
            Submission.status == SubmissionStatus.FINISHED,
            Participant.revoked_at.is_(None),
        )
        .options(selectinload(Submission.episodes), selectinload(Submission.participant))
        .order_by(Submission.score.desc(), Submission.closed_at)
    ).all()
    attempts = dict(
        session.execute(
            select(Submission.participant_id, func.count())
            .where(Submission.round == round_number)
            .group_by(Submission.participant_id)
        ).all()
    )
    scored: dict[int, int] = {}
    best: dict[int, Submission] = {}
    for submission in finished:
        scored[submission.participant_id] = scored.get(submission.participant_id, 0) + 1
        best.setdefault(submission.participant_id, submission)  # first = best (ordered)
    ranked = sorted(best.values(), key=lambda s: (-s.score, s.closed_at))
    return [
        LeaderboardEntry(
            rank=rank,
            participant=s.participant.name,
            score=s.score,
            submissions=attempts.get(s.participant_id, 0),
            scored=scored[s.participant_id],
            submitted_at=s.closed_at,
            episodes=[
                EpisodeEntry(
                    id=e.id,
                    trial=e.trial + 1,
                    reward=e.total_reward,
                    distance=e.distance,
                    steps=e.steps,
                    status=e.status,
                    error=e.error,
                )
                for e in s.episodes
            ],
        )
        for rank, s in enumerate(ranked, start=1)
    ]
