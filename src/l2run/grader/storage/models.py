"""Tables. Times are naive UTC; rewards are float64 (`Double`) so replays compare exactly."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    Boolean,
    DateTime,
    Double,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def utcnow() -> datetime:
    """Naive UTC now (SQLite keeps no time zone; both back ends store the same thing)."""
    return datetime.now(UTC).replace(tzinfo=None)


class Base(DeclarativeBase):
    pass


class SubmissionStatus:
    OPEN = "open"  # trials being run
    FINISHED = "finished"  # scored (monitor/close)
    ABANDONED = "abandoned"  # closed unscored or expired idle


class EpisodeStatus:
    RUNNING = "running"
    DONE = "done"
    ERROR = "error"  # integrator failure or step timeout; its reward is still counted


class Participant(Base):
    __tablename__ = "participants"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)

    submissions: Mapped[list[Submission]] = relationship(back_populates="participant")


class Submission(Base):
    """One remote-evaluation instance: `trials` episodes, then a score."""

    __tablename__ = "submissions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # unguessable instance id
    participant_id: Mapped[int] = mapped_column(ForeignKey("participants.id"), index=True)
    round: Mapped[int] = mapped_column(Integer, index=True)
    env_id: Mapped[str] = mapped_column(String(64))
    client_version: Mapped[str] = mapped_column(String(64), default="")
    engine: Mapped[str] = mapped_column(String(32))
    trials: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default=SubmissionStatus.OPEN, index=True)
    # The first reset after the last trial answers null; later resets are refused.
    exhausted_notified: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    last_active_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    closed_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    score: Mapped[float | None] = mapped_column(Double, nullable=True)

    participant: Mapped[Participant] = relationship(back_populates="submissions")
    episodes: Mapped[list[Episode]] = relationship(
        back_populates="submission", order_by="Episode.trial"
    )


class Episode(Base):
    """One trial. Its seed never leaves the server."""

    __tablename__ = "episodes"
    __table_args__ = (UniqueConstraint("submission_id", "trial"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    submission_id: Mapped[str] = mapped_column(ForeignKey("submissions.id"), index=True)
    trial: Mapped[int] = mapped_column(Integer)
    seed: Mapped[int] = mapped_column(Integer)
    difficulty: Mapped[int] = mapped_column(Integer)
    max_obstacles: Mapped[int] = mapped_column(Integer)
    max_steps: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default=EpisodeStatus.RUNNING)
    steps: Mapped[int] = mapped_column(Integer, default=0)
    total_reward: Mapped[float] = mapped_column(Double, default=0.0)
    start_x: Mapped[float] = mapped_column(Double)  # pelvis x after reset, m
    end_x: Mapped[float] = mapped_column(Double)  # pelvis x after the last step, m
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    started_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)

    submission: Mapped[Submission] = relationship(back_populates="episodes")

    @property
    def distance(self) -> float:
        """Pelvis travel along x over the episode, m."""
        return self.end_x - self.start_x


class Step(Base):
    """Every action a participant sent, in order, with the reward it earned."""

    __tablename__ = "steps"

    episode_id: Mapped[int] = mapped_column(ForeignKey("episodes.id"), primary_key=True)
    index: Mapped[int] = mapped_column(Integer, primary_key=True)
    action: Mapped[str] = mapped_column(Text)  # JSON list of 18 floats (repr round-trips exactly)
    reward: Mapped[float] = mapped_column(Double)
    done: Mapped[bool] = mapped_column(Boolean)


class ServerSecret(Base):
    __tablename__ = "server_secrets"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(256))
