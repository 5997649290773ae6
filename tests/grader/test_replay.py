"""Replays are re-simulations of the logged actions and match the graded episode exactly."""

from __future__ import annotations

import numpy as np
from sqlalchemy import select

from l2run.grader.storage.database import Database
from l2run.grader.storage.models import Step

from .test_protocol_inprocess import run_submission


def logged_rewards(settings, episode_id: int) -> list[float]:
    db = Database(settings.database_url)
    with db.session() as session:
        rows = session.scalars(
            select(Step).where(Step.episode_id == episode_id).order_by(Step.index)
        ).all()
        rewards = [r.reward for r in rows]
    db.dispose()
    return rewards


def test_replay_resimulates_exactly(client, token, settings):
    from l2run.render.recording import load_recording

    instance, totals = run_submission(client, token)
    assert client.post(f"/v1/envs/{instance}/monitor/close/").status_code == 200
    episodes = client.get("/api/leaderboard").json()["rows"][0]["episodes"]
    episode_id = episodes[1]["id"]

    check = client.get(f"/api/episodes/{episode_id}/replay-check").json()
    assert check["match"] is True and check["first_mismatch"] is None
    assert check["replayed_total"] == check["graded_total"] == totals[1]

    recording = client.get(f"/replays/{episode_id}/recording.npz")
    assert recording.status_code == 200
    assert recording.headers["x-l2run-replay-match"] == "true"
    path = settings.replay_dir / "downloaded.npz"
    path.write_bytes(recording.content)
    frames = load_recording(path)
    graded = logged_rewards(settings, episode_id)
    assert np.array_equal(frames.reward[1:], np.array(graded))  # frame 0 is the reset state
    assert len(frames.reward) == len(graded) + 1

    page = client.get(episodes[1]["replay_url"])
    assert page.status_code == 200 and "<html" in page.text.lower()
    assert page.headers["x-l2run-replay-match"] == "true"


def test_replay_of_unknown_or_running_episode(client, token):
    assert client.get("/api/episodes/999999/replay-check").status_code == 404
    instance = client.post("/v1/envs/", json={"token": token}).json()["instance_id"]
    client.post(f"/v1/envs/{instance}/reset/")
    running = client.get("/api/episodes/1/replay-check")  # the only episode: fresh database
    assert running.status_code == 409 and "still running" in running.json()["message"]


def test_served_replays_keep_the_course_secret(client, token, settings):
    """A replay is public: neither its recording nor its page may carry the course's seed (every
    submission of a round meets the same courses) or its psoas weakness."""
    from l2run.grader.services.seeds import derive_seed
    from l2run.render.recording import load_recording

    instance, _ = run_submission(client, token)
    assert client.post(f"/v1/envs/{instance}/monitor/close/").status_code == 200
    episode = client.get("/api/leaderboard").json()["rows"][0]["episodes"][0]
    seed = derive_seed("test-secret", 1, "", episode["trial"] - 1)

    download = client.get(f"/replays/{episode['id']}/recording.npz")
    assert download.status_code == 200
    path = settings.replay_dir / "downloaded.npz"
    path.write_bytes(download.content)
    metadata = load_recording(path).metadata
    assert metadata["engine"] == "opensim" and metadata["difficulty"] == 2  # the rest stays
    assert "seed" not in metadata and "psoas" not in metadata
    page = client.get(episode["replay_url"]).text
    assert str(seed) not in page and str(seed) not in download.content.decode("latin-1")


def test_a_page_left_by_an_earlier_grader_is_made_anew(client, token, settings):
    """The replay folder can outlive the database it was made from: a page already there is
    not served as this database's episode."""
    instance, _ = run_submission(client, token)
    assert client.post(f"/v1/envs/{instance}/monitor/close/").status_code == 200
    episode = client.get("/api/leaderboard").json()["rows"][0]["episodes"][0]
    settings.replay_dir.mkdir(parents=True, exist_ok=True)
    stale = settings.replay_dir / f"episode-{episode['id']}.html"
    stale.write_text("<html>an episode of another database</html>", encoding="utf-8")
    page = client.get(episode["replay_url"])
    assert page.status_code == 200
    assert "another database" not in page.text and "<html" in page.text.lower()
