"""The optional Ray worker pool on a local Ray instance: a full submission, an exact replay, and
recovery when the actor holding an episode dies (rebuilt by replaying the logged actions)."""

from __future__ import annotations

import asyncio

import pytest

from l2run.grader.services.pool import EnvMissing, EpisodeSpec
from l2run.grader.services.pool import simulation as sim

ray = pytest.importorskip("ray", reason="ray is not installed (pip install 'l2run[ray]')")

SPEC = EpisodeSpec(engine="opensim", max_obstacles=3, difficulty=2, seed=1234)
ACTIONS = [[0.2 + 0.03 * ((i + t) % 20) for i in range(18)] for t in range(8)]


@pytest.fixture(scope="module")
def ray_pool():
    from l2run.grader.services.pool.ray_pool import RayPool

    pool = RayPool(1)
    loop = asyncio.new_event_loop()
    loop.run_until_complete(pool.start())
    yield pool, loop
    loop.run_until_complete(pool.stop())
    loop.close()


def test_ray_pool_steps_match_a_local_environment_and_survive_actor_death(ray_pool):
    pool, loop = ray_pool
    reference = sim.EnvTable()
    expected_first = reference.reset("ref", SPEC)
    expected = [reference.step("ref", a) for a in ACTIONS]

    assert loop.run_until_complete(pool.reset("k", SPEC)) == expected_first
    got = [loop.run_until_complete(pool.step("k", a, 60.0)) for a in ACTIONS[:4]]
    ray.kill(pool.actor_of("k"))  # the actor holding the episode dies
    with pytest.raises(EnvMissing):
        loop.run_until_complete(pool.step("k", ACTIONS[4], 60.0))
    rebuilt = loop.run_until_complete(pool.restore("k", SPEC, ACTIONS[:4]))
    assert rebuilt.rewards == [o.reward for o in expected[:4]]
    got += [loop.run_until_complete(pool.step("k", a, 60.0)) for a in ACTIONS[4:]]
    assert got == expected  # observations, rewards, done flags: identical

    replayed = loop.run_until_complete(pool.replay(SPEC, ACTIONS))
    assert replayed.rewards == [o.reward for o in expected]


def test_grader_app_on_the_ray_backend(ray_pool, settings, token):
    from fastapi.testclient import TestClient

    from l2run.grader.app import create_app

    from .test_protocol_inprocess import run_submission

    on_ray = settings.model_copy(update={"pool_backend": "ray", "workers": 1})
    with TestClient(create_app(on_ray), raise_server_exceptions=False) as client:
        instance, totals = run_submission(client, token)
        score = client.post(f"/v1/envs/{instance}/monitor/close/").json()["reward"]
        episode = client.get("/api/leaderboard").json()["rows"][0]["episodes"][0]["id"]
        assert client.get(f"/api/episodes/{episode}/replay-check").json()["match"] is True
    assert score == pytest.approx(sum(totals) / len(totals), rel=1e-12)


REPLAY_STEPS = 600  # OpenSim steps ~180 a second: a replay of >= 3 s, longer on a busy machine
STEP_LIMIT_S = 2.0  # hundreds of times a step's own time, well under the replay's


def test_a_replay_does_not_hold_up_steps(ray_pool):
    """Replays run on an actor of their own: a step sent while a long replay runs comes back
    (within a limit far shorter than the replay) while the replay is still running. Ordering,
    not speed: a loaded machine slows the replay as much as the step."""
    pool, loop = ray_pool

    async def scenario():
        await pool.reset("busy", SPEC)
        replay = asyncio.ensure_future(pool.replay(SPEC, [ACTIONS[0]] * REPLAY_STEPS))
        await asyncio.sleep(0.2)  # the replay is running
        outcome = await pool.step("busy", ACTIONS[0], STEP_LIMIT_S)
        replay_was_running = not replay.done()
        replayed = await replay
        await pool.drop("busy")
        return outcome, replay_was_running, replayed

    outcome, replay_was_running, replayed = loop.run_until_complete(scenario())
    assert outcome.error is None and len(outcome.observation) == 41
    assert replay_was_running
    assert len(replayed.rewards) > 100


RESTORES = 8  # the episode falls after ~120 steps: restores queued for >= 3.5 s in all


def test_time_queued_behind_restores_is_not_a_steps(ray_pool):
    """One actor runs its calls in turn: a step sent while other keys' restores run on the
    same actor waits for them, and its time limit counts from when it starts (it had timed out
    while queued, and the actor holding every episode was killed)."""
    pool, loop = ray_pool
    keys = [f"restored{i}" for i in range(RESTORES)]

    async def scenario():
        for key in ["waiting", *keys]:
            await pool.reset(key, SPEC)
        actor = pool.actor_of("waiting")
        assert all(pool.actor_of(key) == actor for key in keys)  # a pool of one actor
        restores = [
            asyncio.ensure_future(pool.restore(key, SPEC, [ACTIONS[0]] * REPLAY_STEPS))
            for key in keys
        ]
        await asyncio.sleep(0.2)  # the first restore is running
        outcome = await pool.step("waiting", ACTIONS[0], STEP_LIMIT_S)
        restores_done = all(r.done() for r in restores)
        rebuilt = await asyncio.gather(*restores)
        after = await pool.step(keys[0], ACTIONS[1], 60.0)
        same_actor = pool.actor_of("waiting") == actor
        for key in ["waiting", *keys]:
            await pool.drop(key)
        return outcome, restores_done, rebuilt, after, same_actor

    outcome, restores_done, rebuilt, after, same_actor = loop.run_until_complete(scenario())
    assert outcome.error is None and len(outcome.observation) == 41
    assert restores_done and all(len(r.rewards) > 100 for r in rebuilt)
    # an episode longer than the step limit in all
    assert sum(len(r.rewards) for r in rebuilt) / 180 > 2 * STEP_LIMIT_S
    assert after.error is None and same_actor  # nothing was killed
