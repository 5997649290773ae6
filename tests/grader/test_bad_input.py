"""Bad input: every refusal is a 4xx with a message that says what is wrong, and the running
episode carries on afterwards exactly as if the bad request had never come."""

from __future__ import annotations

import json

import pytest

from .conftest import ACTION, make_user


@pytest.fixture
def instance(client, token) -> str:
    created = client.post("/v1/envs/", json={"token": token})
    assert created.status_code == 200, created.text
    instance_id = created.json()["instance_id"]
    assert client.post(f"/v1/envs/{instance_id}/reset/").status_code == 200
    return instance_id


def step(client, instance_id, **kwargs):
    return client.post(f"/v1/envs/{instance_id}/step/", **kwargs)


def assert_refused(response, status: int, *words: str) -> None:
    assert response.status_code == status, response.text
    message = response.json()["message"]
    assert message, "an error must carry a message"
    for word in words:
        assert word in message, message


def assert_episode_intact(client, instance_id: str, steps_before: int) -> None:
    """The next good step is step `steps_before + 1` of the same trial."""
    reply = step(client, instance_id, json={"action": ACTION})
    assert reply.status_code == 200, reply.text
    assert reply.json()["info"]["step"] == steps_before + 1
    assert reply.json()["info"]["trial"] == 1


def test_unknown_token(client):
    assert_refused(client.post("/v1/envs/", json={"token": "nope"}), 401, "unknown token")


def test_revoked_token(client, settings, token, instance):
    from l2run.grader.services.participants import revoke_participant
    from l2run.grader.storage.database import Database

    db = Database(settings.database_url)
    with db.session() as session:
        revoke_participant(session, "alice")
    db.dispose()
    assert_refused(client.post("/v1/envs/", json={"token": token}), 403, "revoked")
    assert_refused(step(client, instance, json={"action": ACTION}), 403, "revoked")


def test_unknown_instance(client):
    assert_refused(step(client, "does-not-exist", json={"action": ACTION}), 404, "unknown instance")
    assert_refused(client.post("/v1/envs/does-not-exist/reset/"), 404, "unknown instance")


def test_unknown_env_id(client, token):
    reply = client.post("/v1/envs/", json={"token": token, "env_id": "Pendulum-v1"})
    assert_refused(reply, 400, "RunEnv")


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ('{"action": [0.1, 0.2', ["malformed JSON"]),
        (json.dumps({"action": [0.5] * 17}), ["exactly 18"]),
        (json.dumps({"action": [0.5] * 19}), ["exactly 18"]),
        ('{"action": [' + ", ".join(["NaN"] + ["0.5"] * 17) + "]}", ["finite"]),
        ('{"action": [' + ", ".join(["Infinity"] + ["0.5"] * 17) + "]}", ["finite"]),
        (json.dumps({"action": ["0.5"] * 18}), ["number"]),
        (json.dumps({"action": [True] * 18}), ["number"]),
        (json.dumps({"action": "0.5"}), ["action"]),
        (json.dumps({"render": True}), ["action"]),
        ("null", ["body"]),
    ],
)
def test_bad_actions_refused_episode_intact(client, instance, body, words):
    assert step(client, instance, json={"action": ACTION}).status_code == 200
    reply = step(client, instance, content=body, headers={"content-type": "application/json"})
    assert_refused(reply, 422, *words)
    assert_episode_intact(client, instance, steps_before=1)


def test_huge_body_refused_with_the_limit(client, instance, settings):
    huge = json.dumps({"action": ACTION, "pad": "x" * (settings.max_body_bytes + 1)})
    assert_refused(step(client, instance, content=huge), 413, str(settings.max_body_bytes))
    assert_episode_intact(client, instance, steps_before=0)


def test_huge_body_without_content_length(client, instance, settings):
    def chunks():
        for _ in range(8):
            yield b"x" * settings.max_body_bytes

    assert_refused(step(client, instance, content=chunks()), 413, "limit")
    assert_episode_intact(client, instance, steps_before=0)


def test_step_after_done_and_reset_past_the_trial_limit(client, instance):
    done, steps = False, 0
    while not done:
        reply = step(client, instance, json={"action": ACTION})
        done, steps = reply.json()["done"], steps + 1
    assert_refused(step(client, instance, json={"action": ACTION}), 409, "over", "reset")
    assert client.post(f"/v1/envs/{instance}/reset/").json()["observation"] is not None  # trial 2
    assert_refused(client.post(f"/v1/envs/{instance}/reset/"), 409, "still running")
    done = False
    while not done:
        done = step(client, instance, json={"action": ACTION}).json()["done"]
    assert client.post(f"/v1/envs/{instance}/reset/").json()["observation"] is None
    assert_refused(client.post(f"/v1/envs/{instance}/reset/"), 409, "all 2 trials", "monitor/close")
    # Refusals did not disturb the submission: it still scores.
    assert client.post(f"/v1/envs/{instance}/monitor/close/").status_code == 200


def test_step_before_reset_and_submit_too_early(client, token):
    instance = client.post("/v1/envs/", json={"token": token}).json()["instance_id"]
    assert_refused(step(client, instance, json={"action": ACTION}), 409, "reset first")
    assert_refused(client.post(f"/v1/envs/{instance}/monitor/close/"), 409, "0 of 2 trials")


def test_other_participant_cannot_touch_an_instance(client, settings, instance):
    mallory = make_user(settings, "mallory")
    headers = {"Authorization": f"Bearer {mallory}"}
    reply = step(client, instance, json={"action": ACTION}, headers=headers)
    assert_refused(reply, 403, "another participant")
    assert_refused(client.post(f"/v1/envs/{instance}/close/", headers=headers), 403, "another")
    assert_episode_intact(client, instance, steps_before=0)


def test_errors_never_leak_the_seed(client, instance):
    reply = step(client, instance, json={"action": ACTION})
    assert "seed" not in json.dumps(reply.json())


@pytest.mark.parametrize("episode_id", ["99999999999999999999999", "0", "-3", str(2**63)])
@pytest.mark.parametrize(
    "route", ["/api/episodes/{}/replay-check", "/replays/{}", "/replays/{}/recording.npz"]
)
def test_episode_ids_out_of_range_are_refused(client, route, episode_id):
    assert_refused(client.get(route.format(episode_id)), 422)


def test_control_characters_are_refused_before_the_database(client, token, instance):
    """PostgreSQL cannot store NUL in text: such strings are a 422, not a driver error."""
    created = client.post("/v1/envs/", json={"token": token, "version": "a\u0000b"})
    assert_refused(created, 422, "version")
    for route in ("reset/", "step/", "close/"):
        assert_refused(client.post(f"/v1/envs/a%00b/{route}", json={"action": ACTION}), 422)
    assert_episode_intact(client, instance, steps_before=0)


@pytest.mark.parametrize(
    "body", [b'{"action": "\xff\xfe"}', b"[" * 5_000 + b"]" * 5_000], ids=["bytes", "deep"]
)
def test_unreadable_bodies_are_named(client, instance, body):
    """Bytes that are not UTF-8, or nesting beyond the JSON decoder's depth (within the size
    limit): a 400 that says what a body must be."""
    headers = {"Content-Type": "application/json"}
    reply = step(client, instance, content=body, headers=headers)
    assert_refused(reply, 400, "not readable JSON", "UTF-8")
    assert_episode_intact(client, instance, steps_before=0)
