"""The leaderboard page in headless Debian Chromium (playwright): the table shows ranks, scores,
submission counts, dates and per-episode distances with replay links, and a screenshot of it
holds one ruled line per row."""

from __future__ import annotations

import shutil
import threading
import time
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
import uvicorn
from PIL import Image
from sqlalchemy import select

from l2run.grader.app import create_app
from l2run.grader.storage.database import Database
from l2run.grader.storage.models import Episode, Participant, Submission, SubmissionStatus

from .conftest import make_user
from .server_process import free_port
from .test_protocol_inprocess import run_submission

CHROMIUM = "/usr/bin/chromium"
ROW_RULE_RGB = (0xD8, 0xDC, 0xE4)  # td border-bottom colour in static/leaderboard.css
pytestmark = pytest.mark.browser

# (participant, [(score, closed_at, [(distance, reward), ...])]) — the best submission ranks.
SUBMISSIONS = {
    "ada": [(7.25, datetime(2026, 11, 20, 9, 30), [(7.0, 7.1), (7.5, 7.4)])],
    "bo": [
        (3.5, datetime(2026, 11, 21, 10, 0), [(3.4, 3.5), (3.6, 3.5)]),
        (9.75, datetime(2026, 11, 22, 11, 15), [(9.9, 9.8), (9.6, 9.7)]),
    ],
    "cy": [(1.125, datetime(2026, 11, 23, 12, 45), [(1.2, 1.1), (1.0, 1.15)])],
}


def fill(settings) -> None:
    for name in SUBMISSIONS:
        make_user(settings, name)
    db = Database(settings.database_url)
    with db.session() as session:
        for name, submissions in SUBMISSIONS.items():
            owner = session.scalar(select(Participant).where(Participant.name == name))
            for n, (score, closed, episodes) in enumerate(submissions):
                submission = Submission(
                    id=f"{name}-{n}",
                    participant_id=owner.id,
                    round=1,
                    env_id="RunEnv",
                    engine="opensim",
                    trials=len(episodes),
                    status=SubmissionStatus.FINISHED,
                    score=score,
                    closed_at=closed,
                )
                session.add(submission)
                for trial, (distance, reward) in enumerate(episodes):
                    session.add(
                        Episode(
                            submission_id=submission.id,
                            trial=trial,
                            seed=0,
                            difficulty=2,
                            max_obstacles=3,
                            max_steps=1000,
                            status="done",
                            steps=1000,
                            total_reward=reward,
                            start_x=0.0,
                            end_x=distance,
                        )
                    )
    db.dispose()


def count_row_rules(png: Path) -> int:
    """Horizontal runs of the row-rule colour spanning most of the table's width."""
    pixels = np.asarray(Image.open(png).convert("RGB")).astype(int)
    close = np.all(np.abs(pixels - np.array(ROW_RULE_RGB)) <= 6, axis=2)
    ruled = close.mean(axis=1) > 0.6
    # A 1-px rule may render 1–2 device pixels tall: count runs, not rows.
    return int(np.sum(ruled[1:] & ~ruled[:-1]) + ruled[0])


def test_leaderboard_page_in_chromium(settings, pool, tmp_path):
    if not Path(CHROMIUM).exists() and shutil.which("chromium") is None:
        pytest.skip("Debian chromium is not installed (apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright

    fill(settings)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(settings, pool=pool), host="127.0.0.1", port=port, log_level="warning"
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        # One real submission too, so a replay link leads to a re-simulated episode.
        real_token = make_user(settings, "dee")
        import httpx

        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120) as http:
            instance, _ = run_submission(http, real_token)
            assert http.post(f"/v1/envs/{instance}/monitor/close/").status_code == 200
        with sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path=CHROMIUM,
                args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
            )
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.goto(f"http://127.0.0.1:{port}/leaderboard")
            table = page.locator("#leaderboard")
            shot = tmp_path / "leaderboard.png"
            table.screenshot(path=str(shot))
            rows = page.locator("#leaderboard tbody tr")
            cells = [
                [c.inner_text().strip() for c in rows.nth(i).locator("td").all()]
                for i in range(rows.count())
            ]
            links = page.locator("#leaderboard a", has_text="replay").evaluate_all(
                "els => els.map(e => e.getAttribute('href'))"
            )
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            dee = page.locator("#leaderboard tbody tr", has_text="dee")
            dee.locator("a", has_text="replay").first.click()
            page.wait_for_selector("canvas#stage")
            page.wait_for_timeout(500)
            replay_shot = tmp_path / "replay.png"
            page.locator("canvas#stage").screenshot(path=str(replay_shot))
            browser.close()
    finally:
        server.should_exit = True
        thread.join(timeout=30)

    real = [c for c in cells if c[1] == "dee"]
    cells = [c for c in cells if c[1] != "dee"]
    assert [c[1:5] for c in cells] == [
        ["bo", "9.7500", "2", "2026-11-22 11:15"],
        ["ada", "7.2500", "1", "2026-11-20 09:30"],
        ["cy", "1.1250", "1", "2026-11-23 12:45"],
    ]
    assert [c[0] for c in cells] == ["1", "2", "3"]  # dee's short run scores near 0: last
    assert len(real) == 1 and real[0][0] == "4"
    assert "9.90 m" in cells[0][5] and "9.60 m" in cells[0][5]  # best submission's episodes
    assert len(links) == 8 and all(link.startswith("/replays/") for link in links)
    image = Image.open(shot)
    assert image.width > 600 and image.height > 100
    assert count_row_rules(shot) == 1 + len(cells) + len(real)  # header rule + one per row
    assert errors == []  # the replay viewer ran without a script error
    drawn = np.asarray(Image.open(replay_shot).convert("RGB"))
    assert len(np.unique(drawn.reshape(-1, 3), axis=0)) > 20  # a drawn scene, not a blank canvas
