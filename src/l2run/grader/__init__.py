"""Self-hostable grader: the 2017 challenge's remote evaluation (gym-http-api routes) plus a
leaderboard. `create_app(settings)` builds the FastAPI app; `l2run grader ...` runs it."""

from l2run.grader.app import create_app
from l2run.grader.settings import GraderSettings

__all__ = ["GraderSettings", "create_app"]
