"""Concurrent calls: steps on one instance are serialised (none lost, none doubled), and
instances of different participants progress side by side."""

from __future__ import annotations

import concurrent.futures

from .conftest import ACTION, make_user

PARALLEL_STEPS = 5


def test_parallel_steps_on_one_instance_are_serialised(client, token):
    instance = client.post("/v1/envs/", json={"token": token}).json()["instance_id"]
    client.post(f"/v1/envs/{instance}/reset/")

    def step(_):
        return client.post(f"/v1/envs/{instance}/step/", json={"action": ACTION})

    with concurrent.futures.ThreadPoolExecutor(PARALLEL_STEPS) as threads:
        replies = list(threads.map(step, range(PARALLEL_STEPS)))
    assert all(r.status_code == 200 for r in replies), [r.text for r in replies]
    assert sorted(r.json()["info"]["step"] for r in replies) == list(range(1, PARALLEL_STEPS + 1))
    following = client.post(f"/v1/envs/{instance}/step/", json={"action": ACTION}).json()
    assert following["info"]["step"] == PARALLEL_STEPS + 1


def test_participants_progress_side_by_side(client, settings, token):
    tokens = [token, make_user(settings, "bob")]
    instances = []
    for t in tokens:
        instance = client.post("/v1/envs/", json={"token": t}).json()["instance_id"]
        client.post(f"/v1/envs/{instance}/reset/", headers={"Authorization": f"Bearer {t}"})
        instances.append((instance, t))

    def three_steps(pair):
        instance, t = pair
        headers = {"Authorization": f"Bearer {t}"}
        return [
            client.post(f"/v1/envs/{instance}/step/", json={"action": ACTION}, headers=headers)
            for _ in range(3)
        ]

    with concurrent.futures.ThreadPoolExecutor(2) as threads:
        results = list(threads.map(three_steps, instances))
    for replies in results:
        assert [r.json()["info"]["step"] for r in replies] == [1, 2, 3]
    # Same course (round-wide seeds), same actions: the two episodes are identical.
    assert [r.json()["reward"] for r in results[0]] == [r.json()["reward"] for r in results[1]]
