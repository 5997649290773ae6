"""The same grader on PostgreSQL (runs when L2RUN_TEST_POSTGRES_URL is set): migrations, a
full submission, concurrent instances, replay exactness and float64 rewards."""

from __future__ import annotations

import concurrent.futures

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import inspect, select

from l2run.grader.app import create_app
from l2run.grader.storage.database import Database
from l2run.grader.storage.models import Step

from .conftest import make_user
from .test_protocol_inprocess import run_submission

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg_settings(settings, postgres_url):
    return settings.model_copy(update={"database_url": postgres_url})


def test_migrations_create_every_table(pg_settings):
    db = Database(pg_settings.database_url)
    db.migrate()
    db.migrate()  # idempotent
    tables = set(inspect(db.engine).get_table_names())
    db.dispose()
    assert {"participants", "submissions", "episodes", "steps", "alembic_version"} <= tables


def test_submissions_on_postgres(pg_settings, pool):
    tokens = [make_user(pg_settings, name) for name in ("pg-a", "pg-b")]
    with TestClient(create_app(pg_settings, pool=pool), raise_server_exceptions=False) as client:
        with concurrent.futures.ThreadPoolExecutor(2) as threads:
            runs = list(threads.map(lambda t: run_submission(client, t), tokens))
        scores = []
        for instance, totals in runs:
            reply = client.post(f"/v1/envs/{instance}/monitor/close/")
            assert reply.status_code == 200, reply.text
            assert reply.json()["reward"] == pytest.approx(sum(totals) / len(totals), rel=1e-12)
            scores.append(reply.json()["reward"])
        board = client.get("/api/leaderboard").json()
        assert sorted(row["score"] for row in board["rows"]) == sorted(scores)
        episode = board["rows"][0]["episodes"][0]["id"]
        check = client.get(f"/api/episodes/{episode}/replay-check").json()
        assert check["match"] is True
    db = Database(pg_settings.database_url)
    with db.session() as session:
        rewards = session.scalars(select(Step.reward).where(Step.episode_id == episode)).all()
    db.dispose()
    assert sum(rewards) == check["graded_total"]  # float64 round trip through PostgreSQL


def test_concurrent_creations_keep_the_submission_limit(pg_settings, pool, tmp_path):
    """Round 2 allows 2 submissions: 12 creations at once (PostgreSQL runs them side by side)
    accept exactly 2 and refuse the rest with the rule, and the database holds 2."""
    from l2run.grader.storage.models import Submission

    from .test_rules import give_round1_score, round2_client

    token = make_user(pg_settings, "racer")
    give_round1_score(pg_settings, "racer", 10.0)
    with round2_client(pg_settings, pool, tmp_path, qualify_score=0.0) as client:
        with concurrent.futures.ThreadPoolExecutor(12) as threads:
            replies = list(
                threads.map(lambda _: client.post("/v1/envs/", json={"token": token}), range(12))
            )
    codes = sorted(r.status_code for r in replies)
    assert codes == [200] * 2 + [403] * 10, [r.text for r in replies]
    assert all(
        "at most 2 submissions" in r.json()["message"] for r in replies if r.status_code == 403
    )
    db = Database(pg_settings.database_url)
    with db.session() as session:
        rows = session.scalars(select(Submission).where(Submission.round == 2)).all()
    db.dispose()
    assert len(rows) == 2
