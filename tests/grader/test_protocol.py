"""Done-when test: the seed's client snippet, verbatim, against `l2run grader serve` (uvicorn in a
subprocess); the score then appears on the leaderboard page."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import requests

from .conftest import write_rounds
from .server_process import GraderServer, l2run

SEED = Path(__file__).resolve().parents[3] / "shared" / "seed" / "000_4261fdf0c48e69f4.txt"

# The seed document's "Evaluation" snippet, character for character. The seed breaks off after
# `if not observation:`; the 2017 README it quotes continues with the three lines of SEED_TAIL.
SEED_SNIPPET = """import opensim as osim
from osim.http.client import Client
from osim.env import RunEnv

# Settings
remote_base = ""
crowdai_token = "[YOUR_CROWD_AI_TOKEN_HERE]"

client = Client(remote_base)

# Create environment
observation = client.env_create(crowdai_token)

# my_controller = ... (for example the one trained in keras_rl)

while True:
    [observation, reward, done, info] = client.env_step(my_controller(observation), True)
    if done:
        observation = client.env_reset()
        if not observation:
"""
SEED_TAIL = """            break

client.submit()
"""
CONTROLLER = """import math

def my_controller(observation):
    # a fixed rhythm, enough to move; any function of the observation would do
    phase = 10.0 * observation[1]
    return [0.5 + 0.4 * math.sin(phase + i) for i in range(18)]

"""


def test_seed_snippet_is_the_seeds_text():
    if not SEED.exists():
        import pytest

        pytest.skip(f"seed document not found at {SEED}")
    assert SEED_SNIPPET in SEED.read_text()


def test_seed_client_snippet_verbatim_against_grader_serve(tmp_path):
    db_url = f"sqlite:///{tmp_path / 'grader.db'}"
    token = l2run("grader", "add-user", "seed-runner", "--db", db_url).strip()
    server = GraderServer(db_url, write_rounds(tmp_path), tmp_path / "server.log").start()
    try:
        snippet = SEED_SNIPPET.replace('remote_base = ""', f'remote_base = "{server.base}"')
        snippet = snippet.replace("[YOUR_CROWD_AI_TOKEN_HERE]", token)
        script = tmp_path / "submit.py"
        script.write_text(CONTROLLER + snippet + SEED_TAIL)
        done = subprocess.run(
            [sys.executable, str(script)], capture_output=True, text=True, timeout=180
        )
        assert done.returncode == 0, done.stderr
        assert "Your total reward from this submission" in done.stdout
        printed = float(done.stdout.rsplit(":", 1)[1])

        board = requests.get(f"{server.base}/api/leaderboard", timeout=10).json()
        assert board["rows"][0]["participant"] == "seed-runner"
        assert abs(board["rows"][0]["score"] - printed) < 1e-6  # printed with %f
        page = requests.get(f"{server.base}/", timeout=10).text
        assert "seed-runner" in page and f"{board['rows'][0]['score']:.4f}" in page
        assert l2run("grader", "leaderboard", "--db", db_url).count("seed-runner") == 1
        check_client_errors(server.base, token)
    finally:
        server.stop()


def check_client_errors(base: str, token: str) -> None:
    """`Client` raises ServerError carrying the server's message and status."""
    import numpy as np
    import pytest

    from osim.http.client import Client, ServerError

    with pytest.raises(ServerError) as refused:
        Client(base).env_create("not-a-token")
    assert refused.value.status_code == 401 and "unknown token" in refused.value.message
    client = Client(base)
    observation = client.env_create(token)
    assert len(observation) == 41
    with pytest.raises(ServerError) as short:
        client.env_step([0.5] * 17)
    assert short.value.status_code == 422 and "exactly 18" in short.value.message
    reply = client.env_step(np.full(18, 0.5))  # numpy actions are sent as lists
    assert reply[3]["step"] == 1
    reply = client.env_step([np.float32(0.5)] * 18)  # and lists of numpy scalars as numbers
    assert reply[3]["step"] == 2
    client.env_close()
    with pytest.raises(ServerError) as closed:
        client.env_step([0.5] * 18)
    assert closed.value.status_code == 410 and "closed" in closed.value.message


def test_client_keeps_a_path_in_remote_base():
    """A grader behind a path prefix (a reverse proxy's /grader/) is reached under it."""
    from osim.http.client import Client

    class Recorded:
        status_code, reason, text = 200, "OK", "{}"

        def json(self):
            return {"instance_id": "abc", "observation": None}

    urls = []
    for base in ("http://grader.example/l2run", "http://grader.example/l2run/"):
        client = Client(base)
        client.session.post = lambda url, **kwargs: urls.append(url) or Recorded()
        client.env_create("token")
    assert urls[0] == "http://grader.example/l2run/v1/envs/"
    assert urls[:3] == urls[3:]
    assert all(u.startswith("http://grader.example/l2run/v1/envs/") for u in urls)
