"""Grader test fixtures: short rounds (few steps, so OpenSim keeps the suite quick), a shared
worker pool, an app on a fresh SQLite file per test, and participants."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from l2run.grader.app import create_app
from l2run.grader.services.participants import add_participant
from l2run.grader.services.pool.process_pool import ProcessPool
from l2run.grader.settings import GraderSettings
from l2run.grader.storage.database import Database

SHORT_ROUNDS = """
[rounds.1]
name = "Round 1"
trials = 2
difficulty = 2
max_obstacles = 3
max_steps = {max_steps}

[rounds.2]
name = "Round 2"
trials = 2
difficulty = 2
max_obstacles = 10
max_steps = {max_steps}
max_submissions = 2
qualify_round = 1
qualify_score = {qualify_score}
"""
SHORT_MAX_STEPS = 6
ACTION = [0.3] * 18
POSTGRES_URL = os.environ.get("L2RUN_TEST_POSTGRES_URL")


def write_rounds(folder: Path, max_steps: int = SHORT_MAX_STEPS, qualify_score: float = -1e9):
    path = folder / "rounds.toml"
    path.write_text(SHORT_ROUNDS.format(max_steps=max_steps, qualify_score=qualify_score))
    return path


@pytest.fixture(scope="session")
def pool() -> Iterator[ProcessPool]:
    """One worker process for the whole grader suite (the machine has 2 shared cores)."""
    shared = ProcessPool(1)
    asyncio.run(shared.start())
    yield shared
    asyncio.run(shared.stop())


@pytest.fixture
def settings(tmp_path: Path) -> GraderSettings:
    return GraderSettings(
        database_url=f"sqlite:///{tmp_path / 'grader.db'}",
        rounds_file=write_rounds(tmp_path),
        secret="test-secret",
        replay_dir=tmp_path / "replays",
        workers=1,
    )


@pytest.fixture
def client(settings: GraderSettings, pool: ProcessPool) -> Iterator[TestClient]:
    with TestClient(create_app(settings, pool=pool), raise_server_exceptions=False) as test_client:
        yield test_client


def make_user(settings: GraderSettings, name: str) -> str:
    db = Database(settings.database_url)
    db.migrate()
    with db.session() as session:
        token = add_participant(session, name)
    db.dispose()
    return token


@pytest.fixture
def token(settings: GraderSettings) -> str:
    return make_user(settings, "alice")


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh database on the PostgreSQL server named by L2RUN_TEST_POSTGRES_URL (.ci/run
    starts one); dropped afterwards."""
    if not POSTGRES_URL:
        pytest.skip("L2RUN_TEST_POSTGRES_URL is not set (.ci/run starts a PostgreSQL server)")
    import uuid

    import sqlalchemy as sa

    name = f"l2run_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = sa.engine.make_url(POSTGRES_URL).set(database=name)
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
