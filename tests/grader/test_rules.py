"""Round rules, limits, idle expiry and the security properties of tokens, ids and seeds."""

from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from l2run.grader.app import create_app
from l2run.grader.services.seeds import derive_seed
from l2run.grader.storage.database import Database
from l2run.grader.storage.models import (
    Episode,
    Participant,
    Submission,
    SubmissionStatus,
    utcnow,
)

from .conftest import ACTION, write_rounds


def give_round1_score(settings, name: str, score: float) -> None:
    db = Database(settings.database_url)
    with db.session() as session:
        participant = session.scalar(select(Participant).where(Participant.name == name))
        session.add(
            Submission(
                id=f"r1-{name}-{score}",
                participant_id=participant.id,
                round=1,
                env_id="RunEnv",
                engine="opensim",
                trials=3,
                status=SubmissionStatus.FINISHED,
                score=score,
                closed_at=utcnow(),
            )
        )
    db.dispose()


def round2_client(settings, pool, tmp_path, qualify_score: float) -> TestClient:
    round2 = settings.model_copy(
        update={"round": 2, "rounds_file": write_rounds(tmp_path, qualify_score=qualify_score)}
    )
    return TestClient(create_app(round2, pool=pool), raise_server_exceptions=False)


def test_round2_needs_a_round1_score_and_limits_submissions(settings, pool, token, tmp_path):
    with round2_client(settings, pool, tmp_path, qualify_score=15.0) as client:
        refused = client.post("/v1/envs/", json={"token": token})
        assert refused.status_code == 403
        assert ">= 15" in refused.json()["message"] and "no scored" in refused.json()["message"]
        give_round1_score(settings, "alice", 12.5)
        refused = client.post("/v1/envs/", json={"token": token})
        assert refused.status_code == 403 and "best 12.5" in refused.json()["message"]
        give_round1_score(settings, "alice", 15.5)
        for _ in range(2):
            created = client.post("/v1/envs/", json={"token": token})
            assert created.status_code == 200, created.text
            client.post(f"/v1/envs/{created.json()['instance_id']}/close/")
        third = client.post("/v1/envs/", json={"token": token})
        assert third.status_code == 403
        assert "at most 2 submissions" in third.json()["message"]


def test_submissions_per_24h_limit(settings, pool, token, tmp_path):
    rounds = tmp_path / "daily.toml"
    rounds.write_text(
        "[rounds.1]\ntrials = 1\ndifficulty = 0\nmax_obstacles = 0\nmax_steps = 2\n"
        "submissions_per_24h = 1\n"
    )
    daily = settings.model_copy(update={"rounds_file": rounds})
    with TestClient(create_app(daily, pool=pool), raise_server_exceptions=False) as client:
        assert client.post("/v1/envs/", json={"token": token}).status_code == 200
        refused = client.post("/v1/envs/", json={"token": token})
        assert refused.status_code == 429
        assert "at most 1 submissions per participant per 24 h" in refused.json()["message"]


def test_open_instance_limit(settings, pool, token):
    capped = settings.model_copy(update={"max_open_instances": 2})
    with TestClient(create_app(capped, pool=pool), raise_server_exceptions=False) as client:
        ids = [client.post("/v1/envs/", json={"token": token}).json()["instance_id"] for _ in "ab"]
        refused = client.post("/v1/envs/", json={"token": token})
        assert refused.status_code == 429
        assert "at most 2 open instances" in refused.json()["message"]
        client.post(f"/v1/envs/{ids[0]}/close/")
        assert client.post("/v1/envs/", json={"token": token}).status_code == 200


def test_idle_instances_expire_as_abandoned(settings, pool, token):
    idle = settings.model_copy(update={"idle_timeout_s": 0.5, "expiry_check_interval_s": 0.2})
    with TestClient(create_app(idle, pool=pool), raise_server_exceptions=False) as client:
        swept = client.post("/v1/envs/", json={"token": token}).json()["instance_id"]
        client.post(f"/v1/envs/{swept}/reset/")
        time.sleep(1.2)  # the background sweep runs every 0.2 s
        reply = client.post(f"/v1/envs/{swept}/step/", json={"action": ACTION})
        assert reply.status_code == 410
        assert "idle longer than the 0.5 s limit" in reply.json()["message"]
    db = Database(settings.database_url)
    with db.session() as session:
        assert session.get(Submission, swept).status == SubmissionStatus.ABANDONED
    db.dispose()


def test_owner_token_required_when_configured(settings, pool, token):
    strict = settings.model_copy(update={"require_owner_token": True})
    with TestClient(create_app(strict, pool=pool), raise_server_exceptions=False) as client:
        instance = client.post("/v1/envs/", json={"token": token}).json()["instance_id"]
        refused = client.post(f"/v1/envs/{instance}/reset/")
        assert refused.status_code == 401 and "Authorization: Bearer" in refused.json()["message"]
        ok = client.post(
            f"/v1/envs/{instance}/reset/", headers={"Authorization": f"Bearer {token}"}
        )
        assert ok.status_code == 200


def test_tokens_hashed_ids_unguessable_seeds_secret(client, settings, token):
    ids = {client.post("/v1/envs/", json={"token": token}).json()["instance_id"] for _ in "abc"}
    assert len(ids) == 3 and all(len(i) >= 32 for i in ids)  # 192 random bits each
    instance = sorted(ids)[0]
    observation = client.post(f"/v1/envs/{instance}/reset/").json()["observation"]
    db = Database(settings.database_url)
    with db.session() as session:
        stored = session.scalar(select(Participant)).token_hash
        episode = session.scalar(select(Episode))
        seed = episode.seed
    db.dispose()
    assert token not in stored and len(stored) == 64
    assert seed == derive_seed("test-secret", 1, "", 0)
    assert seed != derive_seed("another-secret", 1, "", 0)
    assert str(seed) not in str(observation)


@pytest.mark.parametrize("bad", ["[rounds.1]\ntrials = 0\ndifficulty = 2\nmax_obstacles = 3\n"])
def test_bad_rounds_file_is_refused(tmp_path, bad):
    from l2run.grader.rounds import load_rounds

    path = tmp_path / "bad.toml"
    path.write_text(bad)
    with pytest.raises(ValueError, match="trials"):
        load_rounds(path)


def test_packaged_rounds_are_the_2017_rules():
    from l2run.grader.rounds import load_rounds

    rounds = load_rounds()
    assert (rounds[1].trials, rounds[1].difficulty, rounds[1].max_obstacles) == (3, 2, 3)
    assert (rounds[2].trials, rounds[2].max_obstacles, rounds[2].max_submissions) == (10, 10, 3)
    assert (rounds[2].qualify_round, rounds[2].qualify_score) == (1, 15.0)


@pytest.mark.parametrize(("scope", "same"), [("round", True), ("submission", False)])
def test_seed_scope(settings, pool, token, tmp_path, scope, same):
    rounds = tmp_path / f"{scope}.toml"
    rounds.write_text(
        f'[rounds.1]\ntrials = 1\ndifficulty = 2\nmax_obstacles = 3\nseed_scope = "{scope}"\n'
    )
    scoped = settings.model_copy(update={"rounds_file": rounds})
    with TestClient(create_app(scoped, pool=pool), raise_server_exceptions=False) as client:
        first = []
        for _ in range(2):
            instance = client.post("/v1/envs/", json={"token": token}).json()["instance_id"]
            first.append(client.post(f"/v1/envs/{instance}/reset/").json()["observation"])
            client.post(f"/v1/envs/{instance}/close/")
    # The reset observation shows the course (psoas strengths, next obstacle).
    assert (first[0] == first[1]) is same


def test_unknown_ids_and_finished_instances_leave_no_lock(client, token):
    """Per-instance locks live only while a call uses them: a caller inventing ids, or a
    finished instance, cannot grow the server's memory."""
    service = client.app.state.grader
    for i in range(50):
        assert client.post(f"/v1/envs/bogus{i}/reset/").status_code == 404
    instance = client.post("/v1/envs/", json={"token": token}).json()["instance_id"]
    client.post(f"/v1/envs/{instance}/reset/")
    client.post(f"/v1/envs/{instance}/close/")
    assert len(service._locks) == 0


def test_an_instance_found_expired_frees_its_environment(settings, pool, token):
    """Expiry noticed by a call (before the sweep) closes the instance and frees its env."""
    idle = settings.model_copy(update={"idle_timeout_s": 0.5, "expiry_check_interval_s": 3600})
    with TestClient(create_app(idle, pool=pool), raise_server_exceptions=False) as client:
        instance = client.post("/v1/envs/", json={"token": token}).json()["instance_id"]
        client.post(f"/v1/envs/{instance}/reset/")
        assert instance in pool._home
        time.sleep(0.8)
        reply = client.post(f"/v1/envs/{instance}/step/", json={"action": ACTION})
        assert reply.status_code == 410
        assert instance not in pool._home
        assert instance not in client.app.state.grader._last_observation


def test_closing_an_abandoned_instance_still_needs_its_owner(settings, pool, token):
    from .conftest import make_user

    mallory = make_user(settings, "mallory")
    with TestClient(create_app(settings, pool=pool), raise_server_exceptions=False) as client:
        instance = client.post("/v1/envs/", json={"token": token}).json()["instance_id"]
        bearer = {"Authorization": f"Bearer {token}"}
        assert client.post(f"/v1/envs/{instance}/close/", headers=bearer).status_code == 200
        other = client.post(
            f"/v1/envs/{instance}/close/", headers={"Authorization": f"Bearer {mallory}"}
        )
        assert other.status_code == 403 and "another participant" in other.json()["message"]
        assert client.post(f"/v1/envs/{instance}/close/", headers=bearer).status_code == 200
