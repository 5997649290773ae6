"""Replays are re-simulations of the logged actions, checked against what was graded."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

from l2run.grader.errors import GraderError
from l2run.grader.services.pool import EnvMissing, EpisodeSpec, SimulationFailed, SimulationPool
from l2run.grader.services.sessions import logged_steps
from l2run.grader.storage.database import Database
from l2run.grader.storage.models import Episode, EpisodeStatus

RECORDING_SUFFIX = ".npz"
# Re-simulating costs as much as grading: replays share the pool with live submissions, so only a
# few run at once and a bounded number may wait (anyone can open the leaderboard's links).
MAX_CONCURRENT_REPLAYS = 1
MAX_WAITING_REPLAYS = 8


@dataclass(frozen=True)
class ReplayCheck:
    episode_id: int
    steps: int
    graded_total: float
    replayed_total: float
    match: bool  # every step's reward identical (float64 equality)
    first_mismatch: int | None  # step index of the first differing reward
    recording: Path | None = None


class ReplayService:
    def __init__(self, db: Database, pool: SimulationPool, engine: str, replay_dir: Path) -> None:
        self.db = db
        self.pool = pool
        self.engine = engine
        self.replay_dir = Path(replay_dir)
        self._locks: dict[int, asyncio.Lock] = {}
        self._recorded: dict[int, ReplayCheck] = {}
        self._slots = asyncio.Semaphore(MAX_CONCURRENT_REPLAYS)
        self._waiting = 0

    def _load(self, episode_id: int):
        with self.db.session() as session:
            episode = session.get(Episode, episode_id)
            if episode is None:
                raise GraderError(404, f"unknown episode {episode_id}")
            if episode.status == EpisodeStatus.RUNNING:
                raise GraderError(409, f"episode {episode_id} is still running; replay it later")
            spec = EpisodeSpec(
                engine=episode.submission.engine,
                max_obstacles=episode.max_obstacles,
                difficulty=episode.difficulty,
                seed=episode.seed,
            )
            actions, rewards = logged_steps(session, episode_id)
            return spec, actions, rewards, episode.total_reward

    async def check(self, episode_id: int, record: bool = False) -> ReplayCheck:
        """Re-simulate the episode (optionally writing a recording) and compare rewards."""
        spec, actions, rewards, graded_total = await asyncio.to_thread(self._load, episode_id)
        path = None
        if record:
            self.replay_dir.mkdir(parents=True, exist_ok=True)
            path = self.replay_dir / f"episode-{episode_id}{RECORDING_SUFFIX}"
        if self._waiting >= MAX_WAITING_REPLAYS:
            raise GraderError(
                429,
                f"at most {MAX_WAITING_REPLAYS} replays may wait for re-simulation at once "
                f"({MAX_CONCURRENT_REPLAYS} running); try again in a minute",
            )
        lock = self._locks.setdefault(episode_id, asyncio.Lock())
        self._waiting += 1
        try:
            async with lock, self._slots:
                outcome = await self.pool.replay(spec, actions, record=path)
        except (SimulationFailed, EnvMissing) as exc:
            raise GraderError(409, f"re-simulating episode {episode_id} failed: {exc}") from None
        finally:
            self._waiting -= 1
        replayed = outcome.rewards
        mismatch = next(
            (i for i, (a, b) in enumerate(zip(rewards, replayed, strict=False)) if a != b), None
        )
        if mismatch is None and len(replayed) != len(rewards):
            mismatch = min(len(replayed), len(rewards))
        return ReplayCheck(
            episode_id=episode_id,
            steps=len(actions),
            graded_total=graded_total,
            replayed_total=float(sum(replayed)),
            match=mismatch is None,
            first_mismatch=mismatch,
            recording=path,
        )

    async def recording(self, episode_id: int) -> ReplayCheck:
        """The episode's recording, re-simulated once and then served from the replay folder."""
        cached = self._recorded.get(episode_id)
        if cached is not None and cached.recording is not None and cached.recording.exists():
            return cached
        check = await self.check(episode_id, record=True)
        if check.recording is None or not check.recording.exists():
            raise GraderError(500, f"re-simulating episode {episode_id} wrote no recording")
        # A page left in the folder was made from an earlier recording (an earlier run of the
        # grader, perhaps on another database sharing the folder): the next one is made anew.
        check.recording.with_suffix(".html").unlink(missing_ok=True)
        self._recorded[episode_id] = check
        return check

    async def html(self, episode_id: int) -> tuple[str, ReplayCheck]:
        """The render area's self-contained browser replay of the re-simulated episode."""
        from l2run.render.recording import load_recording
        from l2run.render.replay_html import html_replay

        check = await self.recording(episode_id)
        page = check.recording.with_suffix(".html")
        if not page.exists():
            text = await asyncio.to_thread(lambda: html_replay(load_recording(check.recording)))
            page.write_text(text, encoding="utf-8")
        return page.read_text(encoding="utf-8"), check
