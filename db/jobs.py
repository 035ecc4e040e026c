"""Jobs: one per completed study. Creation, the lifecycle moves (``db.lifecycle`` says which are legal), analysis
attempts, and what the analysis stage and the CLI read about a job."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from db.errors import NotFoundError
from db.lifecycle import ANALYSIS_ENDS, LEASED_STATES, TERMINAL_JOB_STATES, check_transition
from db.models import Job, JobEvent, JobState, Study, utcnow
from db.studies import InstanceSummary, instance_summary

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class JobSummary:
    job_id: int
    study_id: int
    state: JobState
    reason: str | None
    detector: str
    attempts: int
    lease_expires_at: datetime | None = None


@dataclass(frozen=True)
class JobWork:
    """Everything the analysis stage needs to run a job."""

    job_id: int
    state: JobState
    detector: str
    study_instance_uid: str
    instances: tuple[InstanceSummary, ...]
    attempt: int = 1
    """Which attempt this is; a retry runs alone (``worker.batching``)."""


class AttemptsExhaustedError(Exception):
    """The job has used all its analysis attempts."""


def create_job(
    session: Session,
    study_id: int,
    detector: str,
    state: JobState,
    reason: str | None = None,
    lease_expires_at: datetime | None = None,
) -> int:
    check_transition(None, None, state)
    job = Job(
        study_id=study_id,
        detector=detector,
        state=state,
        reason=reason,
        attempts=0,
        lease_expires_at=lease_expires_at if state in LEASED_STATES else None,
    )
    session.add(job)
    session.flush()
    _stamp_timings(job, state, utcnow())
    session.add(JobEvent(job_id=job.id, state=state, detail=reason))
    return job.id


def _stamp_timings(job: Job, state: JobState, now: datetime) -> None:
    """Record the timings the dashboard and /metrics report, as the job moves."""
    if state is JobState.ANALYZING:
        job.analysis_started_at = now
        job.analysis_seconds = None
        job.finished_at = None
    elif state in ANALYSIS_ENDS and job.analysis_started_at is not None and job.state is JobState.ANALYZING:
        job.analysis_seconds = (now - job.analysis_started_at).total_seconds()
    if state is JobState.QUEUED:
        job.analysis_seconds = None
        job.finished_at = None
        job.end_to_end_seconds = None
    if state in TERMINAL_JOB_STATES:
        job.finished_at = now
        job.end_to_end_seconds = (now - job.study.last_received_at).total_seconds()


def get_job(session: Session, job_id: int) -> Job:
    job = session.get(Job, job_id)
    if job is None:
        raise NotFoundError(f"job {job_id} does not exist")
    return job


def transition_job(
    session: Session,
    job_id: int,
    state: JobState,
    detail: str | None = None,
    *,
    reason: str | None = None,
    lease_expires_at: datetime | None = None,
) -> None:
    """Move a job to ``state`` and append the JobEvent that records it; only QUEUED and ANALYZING hold a lease.

    Raises ``IllegalTransitionError`` (naming both states) for a move the lifecycle table does not allow."""
    job = get_job(session, job_id)
    check_transition(job_id, job.state, state)
    now = utcnow()
    _stamp_timings(job, state, now)
    job.state = state
    job.lease_expires_at = lease_expires_at if state in LEASED_STATES else None
    if reason is not None:
        job.reason = reason
    elif state is JobState.QUEUED:
        job.reason = None  # a requeued job's old failure no longer describes it
    job.updated_at = now
    session.add(JobEvent(job_id=job_id, state=state, detail=detail if detail is not None else reason))


def start_attempt(
    session: Session, job_id: int, lease_expires_at: datetime, max_attempts: int, worker: str = ""
) -> JobWork:
    """Mark the job ANALYZING under a lease, count the attempt (and name the worker), and return what it needs."""
    job = get_job(session, job_id)
    if job.attempts >= max_attempts:
        raise AttemptsExhaustedError(f"gave up after {job.attempts} attempts without a result")
    job.attempts += 1
    detail = f"attempt {job.attempts}" + (f" on {worker}" if worker else "")
    transition_job(session, job_id, JobState.ANALYZING, detail, lease_expires_at=lease_expires_at)
    return JobWork(
        job_id=job.id,
        state=job.state,
        detector=job.detector,
        study_instance_uid=job.study.study_instance_uid,
        instances=tuple(instance_summary(i) for i in job.study.instances),
        attempt=job.attempts,
    )


def reset_attempts(session: Session, job_id: int) -> None:
    """An operator's requeue gives the job a fresh set of attempts."""
    get_job(session, job_id).attempts = 0


def job_is_stat(session: Session, job_id: int) -> bool:
    """Whether the job's study takes the STAT lane."""
    return bool(session.scalar(select(Study.stat).join(Job, Job.study_id == Study.id).where(Job.id == job_id)))


def job_state(session: Session, job_id: int) -> JobState:
    return get_job(session, job_id).state


def is_encoding(session: Session, job_id: int, now: datetime) -> bool:
    """Whether the job is being analysed by a live worker (its lease not over): more of its objects may come."""
    state, lease = session.execute(select(Job.state, Job.lease_expires_at).where(Job.id == job_id)).one()
    return bool(state is JobState.ANALYZING and lease is not None and lease > now)


def _summary(job: Job) -> JobSummary:
    return JobSummary(job.id, job.study_id, job.state, job.reason, job.detector, job.attempts, job.lease_expires_at)


def job_summary(session: Session, job_id: int) -> JobSummary:
    return _summary(get_job(session, job_id))


def list_jobs(session: Session, study_instance_uid: str | None = None) -> list[JobSummary]:
    query = select(Job).order_by(Job.id)
    if study_instance_uid is not None:
        query = query.join(Study).where(Study.study_instance_uid == study_instance_uid)
    return [_summary(j) for j in session.scalars(query)]


def job_events(session: Session, job_id: int) -> list[tuple[JobState, str | None]]:
    return [(e.state, e.detail) for e in get_job(session, job_id).events]


def job_counts_by_state(session: Session) -> dict[JobState, int]:
    rows = session.execute(select(Job.state, func.count()).group_by(Job.state))
    return dict(rows.all())


def study_has_waiting_job(session: Session, study_id: int) -> bool:
    """Whether a job of the study is queued or being analysed: it will analyse the study's images itself."""
    found = session.scalar(select(Job.id).where(Job.study_id == study_id, Job.state.in_(LEASED_STATES)).limit(1))
    return found is not None


def retracted_jobs(session: Session, study_id: int) -> int:
    """How many of the study's jobs had their results retracted."""
    count = session.scalar(
        select(func.count()).select_from(Job).where(Job.study_id == study_id, Job.state == JobState.RETRACTED)
    )
    return int(count or 0)


def mark_shadow(session: Session, job_id: int) -> None:
    """The job's results were withheld from destinations in shadow mode."""
    get_job(session, job_id).shadow = True


def release_shadow(session: Session, job_id: int, actor: str | None) -> bool:
    """Record an operator's release of a shadow result; False when it is no shadow result or was released before."""
    job = get_job(session, job_id)
    if not job.shadow or job.released_at is not None:
        return False
    job.released_at = utcnow()
    job.released_by = actor
    return True


def withheld_results(session: Session) -> int:
    """Jobs whose results shadow mode withheld and nobody released (the dashboard's tile, /metrics)."""
    query = select(func.count()).select_from(Job).where(Job.shadow.is_(True), Job.released_at.is_(None))
    return int(session.scalar(query) or 0)
