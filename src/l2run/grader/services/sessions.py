"""Instances (submissions), trials (episodes) and steps: the gym-http-api semantics.

Every request runs as: check in one transaction → simulate in the pool (off the event loop) →
record in one transaction. Calls on one instance are serialised by a per-instance lock. The
database is the source of truth: an environment lost to a restart (or a dead worker) is rebuilt
by replaying the logged actions of its running episode.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import statistics
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

from sqlalchemy import func, select
from sqlalchemy.orm import Session, joinedload

from l2run.engines.base import INTEGRATOR_FAILURE_REWARD
from l2run.grader.errors import GraderError
from l2run.grader.rounds import RoundRules
from l2run.grader.services.participants import authenticate, ensure_not_revoked
from l2run.grader.services.pool import (
    BadAction,
    EnvMissing,
    EpisodeSpec,
    SimulationFailed,
    SimulationPool,
    StepOutcome,
)
from l2run.grader.services.seeds import derive_seed
from l2run.grader.services.tokens import hash_token, new_instance_id
from l2run.grader.settings import GraderSettings
from l2run.grader.storage.database import Database
from l2run.grader.storage.models import (
    Episode,
    EpisodeStatus,
    Participant,
    Step,
    Submission,
    SubmissionStatus,
    utcnow,
)
from l2run.observation import PELVIS_X

log = logging.getLogger(__name__)
T = TypeVar("T")

ACCEPTED_ENV_IDS = ("RunEnv", "Run")  # l2run's client sends "RunEnv"; osim-rl 1.x sent "Run"
PELVIS_X_INDEX = PELVIS_X  # index of pelvis x (m) in the 41 observation values
# last_active_at is rewritten at most this often (s): one write fewer on most steps.
ACTIVITY_RESOLUTION_S = 5.0
DAY = timedelta(hours=24)


@dataclass(frozen=True)
class RunningEpisode:
    """What the simulation step needs to know, read in the check transaction."""

    id: int
    trial: int
    trials: int
    steps: int
    max_steps: int
    spec: EpisodeSpec


@dataclass(frozen=True)
class StepReply:
    observation: list[float] | None
    reward: float
    done: bool
    info: dict[str, Any]


class _Refusal:
    """Returned (not raised) from a transaction that must commit before the request is refused;
    `expired`: the instance it just closed, whose environment is then freed."""

    def __init__(self, error: GraderError, expired: str | None = None) -> None:
        self.error = error
        self.expired = expired


class GraderService:
    def __init__(
        self,
        settings: GraderSettings,
        db: Database,
        pool: SimulationPool,
        rules: RoundRules,
        secret: str,
    ) -> None:
        self.settings = settings
        self.db = db
        self.pool = pool
        self.rules = rules
        self._secret = secret
        # Held only while a call holds or awaits it: a lock nobody uses (an unknown id's, a
        # finished instance's) leaves the table by itself, so ids cannot grow it.
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()
        self._last_observation: dict[str, list[float]] = {}

    # -- plumbing ---------------------------------------------------------------------------

    async def _db(self, fn: Callable[..., T], *args: Any) -> T:
        def run() -> T:
            with self.db.session() as session:
                return fn(session, *args)

        result = await asyncio.to_thread(run)
        if isinstance(result, _Refusal):
            if result.expired is not None:
                await self._free(result.expired)
            raise result.error
        return result

    async def _free(self, instance_id: str) -> None:
        """Forget a closed instance's environment and its last observation."""
        await self.pool.drop(instance_id)
        self._last_observation.pop(instance_id, None)

    def _lock(self, instance_id: str) -> asyncio.Lock:
        lock = self._locks.get(instance_id)
        if lock is None:
            lock = self._locks[instance_id] = asyncio.Lock()
        return lock

    def _load(self, session: Session, instance_id: str, token: str | None) -> Submission | _Refusal:
        """The instance, if the caller may use it and it is still open (or finished)."""
        submission = session.scalar(
            select(Submission)
            .where(Submission.id == instance_id)
            .options(joinedload(Submission.participant))
        )
        if submission is None:
            raise GraderError(
                404, f"unknown instance {instance_id!r}: create one with POST /v1/envs/"
            )
        ensure_not_revoked(submission.participant)
        self._check_owner(submission, token)
        if submission.status == SubmissionStatus.ABANDONED:
            raise GraderError(410, self._abandoned_message(submission))
        if submission.status == SubmissionStatus.OPEN and submission.round != self.rules.number:
            raise GraderError(
                409,
                f"this instance belongs to round {submission.round}, but the grader now runs "
                f"{self.rules.name}; create a new instance with POST /v1/envs/",
            )
        if submission.status == SubmissionStatus.OPEN:
            now = utcnow()
            idle = (now - submission.last_active_at).total_seconds()
            if idle > self.settings.idle_timeout_s:
                submission.status = SubmissionStatus.ABANDONED
                submission.closed_at = now
                message = self._abandoned_message(submission)
                return _Refusal(GraderError(410, message), expired=submission.id)
            if idle > min(ACTIVITY_RESOLUTION_S, self.settings.idle_timeout_s / 2):
                submission.last_active_at = now
        return submission

    def _check_owner(self, submission: Submission, token: str | None) -> None:
        """401/403 unless the call may act on the instance: the owner's token, or none where
        the grader does not require it."""
        if token is None and self.settings.require_owner_token:
            raise GraderError(
                401,
                "this grader requires the instance owner's token on every call "
                "(header 'Authorization: Bearer <token>')",
            )
        owner = submission.participant.token_hash
        if token is not None and not hmac.compare_digest(hash_token(token), owner):
            raise GraderError(403, "this instance belongs to another participant")

    def _abandoned_message(self, submission: Submission) -> str:
        return (
            f"instance {submission.id!r} is closed without a score: it was closed before "
            f"submitting, or idle longer than the {self.settings.idle_timeout_s:g} s limit "
            "(counts as an abandoned submission); create a new one with POST /v1/envs/"
        )

    def _scored_message(self, submission: Submission) -> str:
        return (
            f"this submission is already scored ({submission.score:.6g}); "
            "create a new instance with POST /v1/envs/ to submit again"
        )

    def _spec(self, submission: Submission, trial: int) -> EpisodeSpec:
        scope = submission.id if self.rules.seed_scope == "submission" else ""
        seed = derive_seed(self._secret, submission.round, scope, trial)
        return EpisodeSpec(
            engine=submission.engine,
            max_obstacles=self.rules.max_obstacles,
            difficulty=self.rules.difficulty,
            seed=seed,
        )

    # -- env_create ---------------------------------------------------------------------------

    async def create(self, token: str, env_id: str, version: str) -> str:
        if env_id not in ACCEPTED_ENV_IDS:
            raise GraderError(
                400,
                f"unknown env_id {env_id!r}: this grader serves {' or '.join(ACCEPTED_ENV_IDS)}",
            )
        return await self._db(self._create, token, env_id, version)

    def _create(self, session: Session, token: str, env_id: str, version: str) -> str:
        participant = authenticate(session, token)
        # One creation per participant at a time: the limits below count the participant's
        # submissions and then add one, and two concurrent requests (PostgreSQL runs them side
        # by side under READ COMMITTED) would both count the same number. Locking the
        # participant's row serialises them; each count after the lock sees the other's
        # committed row. (SQLite writes one transaction at a time anyway.)
        session.execute(
            select(Participant.id).where(Participant.id == participant.id).with_for_update()
        )
        rules = self.rules
        mine = (
            select(func.count())
            .select_from(Submission)
            .where(Submission.participant_id == participant.id)
        )
        if rules.qualify_round is not None and rules.qualify_score is not None:
            best = session.scalar(
                select(func.max(Submission.score)).where(
                    Submission.participant_id == participant.id,
                    Submission.round == rules.qualify_round,
                    Submission.status == SubmissionStatus.FINISHED,
                )
            )
            if best is None or best < rules.qualify_score:
                have = "no scored submission" if best is None else f"best {best:.6g}"
                raise GraderError(
                    403,
                    f"{rules.name} is open only to participants whose best round "
                    f"{rules.qualify_round} score is >= {rules.qualify_score:g}; you have {have}",
                )
        if rules.max_submissions is not None:
            used = session.scalar(mine.where(Submission.round == rules.number))
            if used >= rules.max_submissions:
                raise GraderError(
                    403,
                    f"{rules.name} allows at most {rules.max_submissions} submissions per "
                    f"participant (abandoned ones count); you have made {used}",
                )
        if rules.submissions_per_24h is not None:
            since = utcnow() - DAY
            recent = session.scalars(
                select(Submission.created_at)
                .where(Submission.participant_id == participant.id, Submission.created_at > since)
                .order_by(Submission.created_at)
            ).all()
            if len(recent) >= rules.submissions_per_24h:
                next_at = recent[0] + DAY
                raise GraderError(
                    429,
                    f"at most {rules.submissions_per_24h} submissions per participant per 24 h; "
                    f"the next one is allowed after {next_at:%Y-%m-%d %H:%M} UTC",
                )
        open_now = session.scalar(mine.where(Submission.status == SubmissionStatus.OPEN))
        if open_now >= self.settings.max_open_instances:
            raise GraderError(
                429,
                f"at most {self.settings.max_open_instances} open instances per participant; "
                "close one (POST /v1/envs/{id}/close/) or let it expire after "
                f"{self.settings.idle_timeout_s:g} s idle",
            )
        submission = Submission(
            id=new_instance_id(),
            participant_id=participant.id,
            round=rules.number,
            env_id=env_id,
            client_version=(version or "")[:64],
            engine=self.settings.engine,
            trials=rules.trials,
        )
        session.add(submission)
        return submission.id

    async def monitor_start(self, instance_id: str, token: str | None) -> None:
        await self._db(self._touch, instance_id, token)

    def _touch(self, session: Session, instance_id: str, token: str | None) -> Any:
        loaded = self._load(session, instance_id, token)
        return loaded if isinstance(loaded, _Refusal) else None

    # -- reset --------------------------------------------------------------------------------

    async def reset(self, instance_id: str, token: str | None) -> list[float] | None:
        async with self._lock(instance_id):
            plan = await self._db(self._plan_reset, instance_id, token)
            if plan is None:
                await self.pool.drop(instance_id)
                self._last_observation.pop(instance_id, None)
                return None
            trial, spec = plan
            observation = await self._reset_env(instance_id, spec)
            await self._db(self._start_episode, instance_id, trial, spec, observation)
            self._last_observation[instance_id] = observation
            return observation

    async def _reset_env(self, instance_id: str, spec: EpisodeSpec) -> list[float]:
        """The new trial's first observation; a worker lost while building it is replaced
        and the reset tried once more (no trial has started, so nothing is lost)."""
        try:
            return await self.pool.reset(instance_id, spec)
        except (EnvMissing, SimulationFailed):
            await self.pool.drop(instance_id)
        try:
            return await self.pool.reset(instance_id, spec)
        except (EnvMissing, SimulationFailed) as exc:
            raise GraderError(
                503,
                f"the simulation could not start this trial ({exc}); nothing was recorded: "
                "call reset again",
            ) from None

    def _plan_reset(self, session: Session, instance_id: str, token: str | None):
        submission = self._load(session, instance_id, token)
        if isinstance(submission, _Refusal):
            return submission
        if submission.status == SubmissionStatus.FINISHED:
            raise GraderError(409, self._scored_message(submission))
        last = _last_episode(session, instance_id)
        if last is not None and last.status == EpisodeStatus.RUNNING:
            raise GraderError(
                409,
                f"trial {last.trial + 1} of {submission.trials} is still running (step "
                f"{last.steps} of at most {last.max_steps}); step until done=true, then reset",
            )
        trial = 0 if last is None else last.trial + 1
        if trial >= submission.trials:
            if not submission.exhausted_notified:
                submission.exhausted_notified = True
                return None  # the seed's loop: `if not observation: break`
            raise GraderError(
                409,
                f"all {submission.trials} trials of this submission are finished; submit with "
                f"POST /v1/envs/{instance_id}/monitor/close/",
            )
        return trial, self._spec(submission, trial)

    def _start_episode(
        self,
        session: Session,
        instance_id: str,
        trial: int,
        spec: EpisodeSpec,
        observation: list[float],
    ) -> None:
        x = observation[PELVIS_X_INDEX]
        session.add(
            Episode(
                submission_id=instance_id,
                trial=trial,
                seed=spec.seed,
                difficulty=spec.difficulty,
                max_obstacles=spec.max_obstacles,
                max_steps=self.rules.max_steps,
                start_x=x,
                end_x=x,
            )
        )

    # -- step ---------------------------------------------------------------------------------

    async def step(self, instance_id: str, token: str | None, action: list[float]) -> StepReply:
        async with self._lock(instance_id):
            episode = await self._db(self._plan_step, instance_id, token)
            outcome = await self._simulate(instance_id, episode, action)
            try:
                return await self._db(self._record_step, instance_id, episode, action, outcome)
            except BaseException:
                # The environment has taken a step the log does not hold: forget it, so the
                # next call rebuilds it from the log (what was graded) instead of going on
                # from a state no replay would reach.
                await self._free(instance_id)
                raise

    def _plan_step(self, session: Session, instance_id: str, token: str | None):
        submission = self._load(session, instance_id, token)
        if isinstance(submission, _Refusal):
            return submission
        if submission.status == SubmissionStatus.FINISHED:
            raise GraderError(409, self._scored_message(submission))
        last = _last_episode(session, instance_id)
        if last is None:
            raise GraderError(409, "no trial is running: call reset first")
        if last.status != EpisodeStatus.RUNNING:
            after = (
                "call reset to start the next trial"
                if last.trial + 1 < submission.trials
                else f"all {submission.trials} trials are finished; call reset (answers null) "
                "and submit"
            )
            raise GraderError(
                409,
                f"trial {last.trial + 1} of {submission.trials} is over (done=true after "
                f"{last.steps} steps); {after}",
            )
        return RunningEpisode(
            id=last.id,
            trial=last.trial,
            trials=submission.trials,
            steps=last.steps,
            max_steps=last.max_steps,
            spec=EpisodeSpec(
                engine=submission.engine,
                max_obstacles=last.max_obstacles,
                difficulty=last.difficulty,
                seed=last.seed,
            ),
        )

    async def _simulate(
        self, instance_id: str, episode: RunningEpisode, action: list[float]
    ) -> StepOutcome:
        for attempt in range(2):
            try:
                outcome = await self.pool.step(instance_id, action, self.settings.step_timeout_s)
            except EnvMissing:
                if attempt:
                    break
                try:
                    await self._restore(instance_id, episode)
                except (SimulationFailed, EnvMissing) as exc:
                    message = f"could not rebuild the episode by replay: {exc}"
                    return self._failed(instance_id, message)
                continue
            except BadAction as exc:
                raise GraderError(422, f"action refused by the environment: {exc}") from None
            except SimulationFailed as exc:
                return self._failed(instance_id, str(exc))
            self._last_observation[instance_id] = outcome.observation
            return outcome
        return self._failed(instance_id, "the simulation worker was lost twice during this step")

    def _failed(self, instance_id: str, message: str) -> StepOutcome:
        """A step the simulation could not complete ends the trial as an integrator failure
        does in `RunEnv`: done, the failure reward, the message in info.error."""
        observation = self._last_observation.get(instance_id)
        return StepOutcome(observation, INTEGRATOR_FAILURE_REWARD, True, message)

    async def _restore(self, instance_id: str, episode: RunningEpisode) -> None:
        """Rebuild the environment by replaying the episode's logged actions."""
        actions, rewards = await self._db(_logged_steps, episode.id)
        outcome = await self.pool.restore(instance_id, episode.spec, actions)
        if outcome.rewards != rewards:
            log.error(
                "instance %s trial %d: replaying %d logged actions gave different rewards",
                instance_id,
                episode.trial,
                len(actions),
            )
        self._last_observation[instance_id] = outcome.observations[-1]
        # Worth a warning: it means the server restarted or a worker process died.
        log.warning("instance %s: rebuilt after %d logged steps", instance_id, len(actions))

    def _record_step(
        self,
        session: Session,
        instance_id: str,
        running: RunningEpisode,
        action: list[float],
        outcome: StepOutcome,
    ) -> StepReply:
        episode = session.get(Episode, running.id)
        index = episode.steps
        done = outcome.done or outcome.error is not None or index + 1 >= episode.max_steps
        session.add(
            Step(
                episode_id=episode.id,
                index=index,
                action=json.dumps(action),
                reward=outcome.reward,
                done=done,
            )
        )
        episode.steps = index + 1
        episode.total_reward = episode.total_reward + outcome.reward
        if outcome.observation is not None:
            episode.end_x = outcome.observation[PELVIS_X_INDEX]
        if done:
            episode.status = EpisodeStatus.ERROR if outcome.error else EpisodeStatus.DONE
            episode.error = outcome.error
            episode.finished_at = utcnow()
        info: dict[str, Any] = {
            "trial": running.trial + 1,
            "trials": running.trials,
            "step": index + 1,
            "max_steps": episode.max_steps,
        }
        if outcome.error:
            info["error"] = outcome.error
        return StepReply(outcome.observation, outcome.reward, done, info)

    # -- submit / close -----------------------------------------------------------------------

    async def submit(self, instance_id: str, token: str | None) -> float:
        async with self._lock(instance_id):
            score = await self._db(self._score, instance_id, token)
            await self._free(instance_id)
            return score

    def _score(self, session: Session, instance_id: str, token: str | None):
        submission = self._load(session, instance_id, token)
        if isinstance(submission, _Refusal):
            return submission
        if submission.status == SubmissionStatus.FINISHED:
            return submission.score  # submitting twice answers the same score
        finished = [e for e in submission.episodes if e.status != EpisodeStatus.RUNNING]
        if len(finished) < submission.trials:
            raise GraderError(
                409,
                f"{len(finished)} of {submission.trials} trials are finished; run every trial "
                "(reset, then step until done=true) before submitting",
            )
        # Score and closing in one transaction: a scored submission is never left open and
        # a closed one never lacks its score.
        submission.score = statistics.fmean(e.total_reward for e in finished)
        submission.status = SubmissionStatus.FINISHED
        submission.closed_at = utcnow()
        return submission.score

    async def close(self, instance_id: str, token: str | None) -> None:
        async with self._lock(instance_id):
            await self._db(self._close, instance_id, token)
            await self._free(instance_id)

    def _close(self, session: Session, instance_id: str, token: str | None) -> None:
        submission = session.get(Submission, instance_id)
        if submission is not None and submission.status == SubmissionStatus.ABANDONED:
            self._check_owner(submission, token)
            return  # closing twice is harmless
        loaded = self._load(session, instance_id, token)
        if isinstance(loaded, _Refusal):
            return None  # it just expired: closed either way
        if loaded.status == SubmissionStatus.OPEN:
            loaded.status = SubmissionStatus.ABANDONED
            loaded.closed_at = utcnow()

    # -- idle expiry --------------------------------------------------------------------------

    async def expire_idle(self) -> list[str]:
        """Abandon open instances idle longer than the limit; free their environments."""
        expired = await self._db(self._expire)
        for instance_id in expired:
            await self._free(instance_id)
        return expired

    def _expire(self, session: Session) -> list[str]:
        cutoff = utcnow() - timedelta(seconds=self.settings.idle_timeout_s)
        stale = session.scalars(
            select(Submission).where(
                Submission.status == SubmissionStatus.OPEN, Submission.last_active_at < cutoff
            )
        ).all()
        for submission in stale:
            submission.status = SubmissionStatus.ABANDONED
            submission.closed_at = utcnow()
        return [s.id for s in stale]


def _last_episode(session: Session, instance_id: str) -> Episode | None:
    return session.scalar(
        select(Episode)
        .where(Episode.submission_id == instance_id)
        .order_by(Episode.trial.desc())
        .limit(1)
    )


def _logged_steps(session: Session, episode_id: int) -> tuple[list[list[float]], list[float]]:
    rows = session.scalars(
        select(Step).where(Step.episode_id == episode_id).order_by(Step.index)
    ).all()
    return [json.loads(r.action) for r in rows], [r.reward for r in rows]


def logged_steps(session: Session, episode_id: int) -> tuple[list[list[float]], list[float]]:
    """Actions and rewards of an episode, in step order."""
    return _logged_steps(session, episode_id)
