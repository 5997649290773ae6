"""The protocol through the app in-process: create, reset, step to done, submit, leaderboard."""

from __future__ import annotations

from .conftest import ACTION, SHORT_MAX_STEPS


def run_submission(client, token: str, action=ACTION) -> tuple[str, list[float]]:
    """One full submission; returns (instance id, per-trial total rewards)."""
    created = client.post("/v1/envs/", json={"env_id": "RunEnv", "token": token, "version": "t"})
    assert created.status_code == 200, created.text
    instance = created.json()["instance_id"]
    base = f"/v1/envs/{instance}"
    assert client.post(f"{base}/monitor/start/", json={"directory": "tmp"}).status_code == 200
    totals = []
    observation = client.post(f"{base}/reset/", content="null").json()["observation"]
    while observation is not None:
        assert len(observation) == 41
        total, done, steps = 0.0, False, 0
        while not done:
            reply = client.post(f"{base}/step/", json={"action": action, "render": True})
            assert reply.status_code == 200, reply.text
            body = reply.json()
            total += body["reward"]
            done = body["done"]
            steps += 1
        assert steps <= SHORT_MAX_STEPS
        totals.append(total)
        observation = client.post(f"{base}/reset/", content="null").json()["observation"]
    return instance, totals


def test_submission_round_trip_scores_mean_of_trials(client, token):
    instance, totals = run_submission(client, token)
    assert len(totals) == 2
    submitted = client.post(f"/v1/envs/{instance}/monitor/close/", content="null")
    assert submitted.status_code == 200, submitted.text
    assert submitted.json()["reward"] == sum(totals) / len(totals)
    assert client.post(f"/v1/envs/{instance}/close/", content="null").status_code == 200
    board = client.get("/api/leaderboard").json()
    assert [row["participant"] for row in board["rows"]] == ["alice"]
    assert board["rows"][0]["score"] == submitted.json()["reward"]
    assert len(board["rows"][0]["episodes"]) == 2
