"""Persistence: SQLAlchemy 2 models, Alembic migrations (applied at startup), sessions."""

from l2run.grader.storage.database import Database
from l2run.grader.storage.models import Episode, Participant, ServerSecret, Step, Submission

__all__ = ["Database", "Episode", "Participant", "ServerSecret", "Step", "Submission"]
