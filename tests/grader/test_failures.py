"""Failures inside the simulation never become a 5xx: an integrator failure ends the trial with
a recorded error and a 200; a step past its time limit likewise; a worker process that dies
loses nothing (its environments are rebuilt by replaying the logged actions)."""

from __future__ import annotations

import dataclasses

from fastapi.testclient import TestClient

from l2run.grader.app import create_app
from l2run.grader.services.pool import EpisodeSpec, SimulationPool
from l2run.grader.services.pool import simulation as sim

from .conftest import ACTION
from .test_protocol_inprocess import run_submission

INTEGRATOR_FAILURE_REWARD = -500.0  # RunEnv's contract (osim-rl 1.5)


class IntegratorFailsAtStep(SimulationPool):
    """The real pool, except that step `fail_at` of the first trial comes back as RunEnv reports
    an integrator failure (done, -500, info["error"]). Test-only."""

    def __init__(self, pool: SimulationPool, fail_at: int) -> None:
        self.pool, self.fail_at, self.steps = pool, fail_at, 0

    async def start(self):
        pass

    async def stop(self):
        pass

    async def reset(self, key, spec):
        return await self.pool.reset(key, spec)

    async def step(self, key, action, timeout_s):
        outcome = await self.pool.step(key, action, timeout_s)
        self.steps += 1
        if self.steps == self.fail_at:
            return dataclasses.replace(
                outcome,
                reward=INTEGRATOR_FAILURE_REWARD,
                done=True,
                error="integrator failure at t=0.02 s: simulated for the test",
            )
        return outcome

    async def restore(self, key, spec, actions):
        return await self.pool.restore(key, spec, actions)

    async def replay(self, spec, actions, record=None):
        return await self.pool.replay(spec, actions, record)

    async def drop(self, key):
        await self.pool.drop(key)


def test_integrator_failure_is_a_recorded_error_and_a_200(settings, pool, token):
    failing = IntegratorFailsAtStep(pool, fail_at=2)
    with TestClient(create_app(settings, pool=failing), raise_server_exceptions=False) as client:
        instance = client.post("/v1/envs/", json={"token": token}).json()["instance_id"]
        client.post(f"/v1/envs/{instance}/reset/")
        assert client.post(f"/v1/envs/{instance}/step/", json={"action": ACTION}).status_code == 200
        failed = client.post(f"/v1/envs/{instance}/step/", json={"action": ACTION})
        assert failed.status_code == 200
        body = failed.json()
        assert body["done"] is True and body["reward"] == INTEGRATOR_FAILURE_REWARD
        assert "integrator failure" in body["info"]["error"]
        # The submission goes on: trial 2, then a score that counts the failed trial.
        assert client.post(f"/v1/envs/{instance}/reset/").json()["observation"] is not None
        done = False
        while not done:
            done = client.post(f"/v1/envs/{instance}/step/", json={"action": ACTION}).json()["done"]
        client.post(f"/v1/envs/{instance}/reset/")
        score = client.post(f"/v1/envs/{instance}/monitor/close/").json()["reward"]
        episodes = client.get("/api/leaderboard").json()["rows"][0]["episodes"]
    assert episodes[0]["status"] == "error" and "integrator" in episodes[0]["error"]
    assert episodes[0]["steps"] == 2
    assert score == (episodes[0]["reward"] + episodes[1]["reward"]) / 2
    assert score < INTEGRATOR_FAILURE_REWARD / 2 + 1


def test_step_past_the_time_limit_ends_the_trial_not_the_server(settings, pool, token):
    hasty = settings.model_copy(update={"step_timeout_s": 1e-4})
    with TestClient(create_app(hasty, pool=pool), raise_server_exceptions=False) as client:
        instance = client.post("/v1/envs/", json={"token": token}).json()["instance_id"]
        client.post(f"/v1/envs/{instance}/reset/")
        reply = client.post(f"/v1/envs/{instance}/step/", json={"action": ACTION})
    assert reply.status_code == 200, reply.text
    assert reply.json()["done"] is True
    assert "longer than the 0.0001 s limit" in reply.json()["info"]["error"]


def test_dead_worker_loses_nothing(client, token, pool):
    """Kill the worker process mid-episode: the next step rebuilds the environment by replay
    and the submission's rewards equal a local, uninterrupted run of the same course."""
    instance = client.post("/v1/envs/", json={"token": token}).json()["instance_id"]
    client.post(f"/v1/envs/{instance}/reset/")
    rewards = [
        client.post(f"/v1/envs/{instance}/step/", json={"action": ACTION}).json()["reward"]
        for _ in range(3)
    ]
    pool._home[instance].process.kill()  # the worker holding this episode dies
    for _ in range(2):
        reply = client.post(f"/v1/envs/{instance}/step/", json={"action": ACTION})
        assert reply.status_code == 200, reply.text
        rewards.append(reply.json()["reward"])

    from l2run.grader.services.seeds import derive_seed

    spec = EpisodeSpec("opensim", 3, 2, derive_seed("test-secret", 1, "", 0))
    local = sim.EnvTable()
    local.reset("x", spec)
    assert rewards == [local.step("x", ACTION).reward for _ in range(5)]


def test_a_second_full_submission_after_failures_still_scores(client, token):
    instance, totals = run_submission(client, token)
    reply = client.post(f"/v1/envs/{instance}/monitor/close/")
    assert reply.status_code == 200
    assert isinstance(reply.json()["reward"], float) and len(totals) == 2
