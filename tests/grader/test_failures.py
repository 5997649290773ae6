"""Failures inside the simulation never become a 5xx: an integrator failure ends the trial with
a recorded error and a 200; a step past its time limit likewise; a worker process that dies
loses nothing (its environments are rebuilt by replaying the logged actions)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import math

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.exc import OperationalError

from l2run.grader.app import create_app
from l2run.grader.services.pool import EnvMissing, EpisodeSpec, SimulationFailed, SimulationPool
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
    assert reply.json()["reward"] == INTEGRATOR_FAILURE_REWARD  # as RunEnv's own failures
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


class ResetLosesWorker(IntegratorFailsAtStep):
    """The real pool, except that the first `losses` resets find their worker gone."""

    def __init__(self, pool: SimulationPool, losses: int) -> None:
        super().__init__(pool, fail_at=0)
        self.losses = losses

    async def reset(self, key, spec):
        if self.losses:
            self.losses -= 1
            raise EnvMissing("worker 0 stopped (simulated for the test)")
        return await self.pool.reset(key, spec)


@contextlib.contextmanager
def instance_losing_resets(settings, pool, token, losses: int):
    """(client, instance id) of a grader whose first `losses` resets lose their worker."""
    app = create_app(settings, pool=ResetLosesWorker(pool, losses=losses))
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client, client.post("/v1/envs/", json={"token": token}).json()["instance_id"]


def test_a_worker_lost_during_reset_is_replaced(settings, pool, token):
    with instance_losing_resets(settings, pool, token, losses=1) as (client, instance):
        reply = client.post(f"/v1/envs/{instance}/reset/")
        assert reply.status_code == 200, reply.text
        assert len(reply.json()["observation"]) == 41


def test_a_reset_that_fails_twice_says_so_and_loses_nothing(settings, pool, token):
    with instance_losing_resets(settings, pool, token, losses=2) as (client, instance):
        refused = client.post(f"/v1/envs/{instance}/reset/")
        assert refused.status_code == 503
        assert "call reset again" in refused.json()["message"]
        again = client.post(f"/v1/envs/{instance}/reset/")  # no trial was started by the failure
        assert again.status_code == 200, again.text
        step = client.post(f"/v1/envs/{instance}/step/", json={"action": ACTION}).json()
        assert step["info"]["trial"] == 1 and step["info"]["step"] == 1


def test_a_step_the_log_lost_is_not_kept(client, token):
    """A database failure while recording a step answers 500 "nothing was recorded"; the
    environment must then not carry that step on: the episode goes on from the log, and its
    replay matches what was graded."""
    service = client.app.state.grader
    record = service._record_step
    failures = iter([True])

    def flaky(*args):
        if next(failures, False):
            raise OperationalError("INSERT", {}, Exception("database is locked"))
        return record(*args)

    service._record_step = flaky
    instance = client.post("/v1/envs/", json={"token": token}).json()["instance_id"]
    client.post(f"/v1/envs/{instance}/reset/")
    lost = client.post(f"/v1/envs/{instance}/step/", json={"action": [0.9] * 18})
    assert lost.status_code == 500 and "nothing was recorded" in lost.json()["message"]
    done, steps = False, 0
    while not done:
        reply = client.post(f"/v1/envs/{instance}/step/", json={"action": ACTION})
        assert reply.status_code == 200, reply.text
        done, steps = reply.json()["done"], steps + 1
        assert reply.json()["info"]["step"] == steps  # the lost step is not counted
    episode = client.get("/api/episodes/1/replay-check").json()
    assert episode["match"] is True and episode["steps"] == steps


class NonFiniteEnv:
    """Stands in for a RunEnv whose step comes back with NaN (test-only)."""

    def step(self, action):
        return [0.0] * 41, math.nan, False, {}

    def close(self):
        pass


def test_a_non_finite_step_is_a_failed_step():
    table = sim.EnvTable()
    table._envs["k"] = (NonFiniteEnv(), ("opensim", 3))
    with pytest.raises(SimulationFailed, match="non-finite"):
        table.step("k", ACTION)
    assert len(table) == 0  # dropped, and not kept as a spare
    assert not table._spare.get(("opensim", 3))


STEP_LIMIT_S = 0.2  # far above one OpenSim step (~5 ms), far below a 100-step replay


def test_time_queued_behind_a_replay_is_not_charged_to_a_step(pool):
    """A step waiting on its worker behind a long replay (a spectator's) keeps its own time
    limit: it runs once the worker is free and completes."""
    from l2run.grader.services.seeds import derive_seed

    spec = EpisodeSpec("opensim", 3, 2, derive_seed("test-secret", 1, "", 0))

    async def scenario():
        await pool.reset("queued", spec)
        replay = asyncio.create_task(pool.replay(spec, [ACTION] * 150))
        await asyncio.sleep(0.1)  # the replay holds the worker
        started = asyncio.get_running_loop().time()
        outcome = await pool.step("queued", ACTION, STEP_LIMIT_S)
        waited = asyncio.get_running_loop().time() - started
        replayed = await replay
        await pool.drop("queued")
        return outcome, waited, replayed

    outcome, waited, replayed = asyncio.run(scenario())
    assert outcome.error is None and len(outcome.observation) == 41
    assert len(replayed.rewards) > 100  # (the runner may fall before the 150th action)
    assert waited > STEP_LIMIT_S  # it waited longer than its limit, nearly all of it queued
