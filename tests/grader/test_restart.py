"""Nothing lost: kill -9 the server mid-episode, restart it, and the episode continues exactly
(its environment rebuilt by replaying the logged actions); finished scores are intact."""

from __future__ import annotations

import math

import pytest

from osim.http.client import Client

from .conftest import write_rounds
from .server_process import GraderServer, l2run

MAX_STEPS = 10
KILL_AFTER = 4  # steps into trial 2


def action(t: int) -> list[float]:
    return [0.5 + 0.4 * math.sin(0.3 * t + i) for i in range(18)]


def run_trials(client: Client, first_observation, on_step=None) -> list[list[float]]:
    """Every trial to its end with the fixed action sequence; rewards per trial."""
    rewards: list[list[float]] = []
    observation = first_observation
    while observation is not None:
        trial: list[float] = []
        done = False
        while not done:
            if on_step is not None:
                on_step(len(rewards), len(trial))
            observation, reward, done, info = client.env_step(action(len(trial)))
            assert info["step"] == len(trial) + 1  # the episode continues, never restarts
            trial.append(reward)
        rewards.append(trial)
        observation = client.env_reset()
    return rewards


@pytest.mark.timeout(300)
@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_kill_9_mid_episode_then_restart(tmp_path, backend, request):
    if backend == "postgres":
        db_url = request.getfixturevalue("postgres_url")
    else:
        db_url = f"sqlite:///{tmp_path / 'grader.db'}"
    rounds = write_rounds(tmp_path, max_steps=MAX_STEPS)
    tokens = {name: l2run("grader", "add-user", name, "--db", db_url).strip() for name in "ab"}
    server = GraderServer(db_url, rounds, tmp_path / "server.log").start()
    try:
        # Reference: participant a, uninterrupted (round-wide seeds: same courses for b).
        reference = Client(server.base)
        reference_rewards = run_trials(reference, reference.env_create(tokens["a"]))
        reference_score = reference.submit()

        crashing = Client(server.base)
        first = crashing.env_create(tokens["b"])

        def crash_once(trial: int, step: int) -> None:
            if (trial, step) == (1, KILL_AFTER) and server.process is not None:
                server.kill()
                server.start()  # same database, same port

        rewards = run_trials(crashing, first, on_step=crash_once)
        assert server.process is not None
        score = crashing.submit()
        # After the restart: a's score (finished before the kill) and b's are both there.
        board = crashing.session.get(f"{server.base}/api/leaderboard").json()
    finally:
        server.stop()

    assert [len(t) for t in rewards] == [len(t) for t in reference_rewards]
    assert rewards == reference_rewards  # exact: the rebuilt episode is the same episode
    assert score == reference_score
    log = (tmp_path / "server.log").read_text()
    assert "rebuilt after 4 logged steps" in log  # the environment really was lost
    scores = {row["participant"]: row["score"] for row in board["rows"]}
    assert scores == {"a": reference_score, "b": score}
    steps = [ep["steps"] for row in board["rows"] for ep in row["episodes"]]
    assert steps == [len(t) for t in reference_rewards] * 2
