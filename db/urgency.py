"""Critical results communication: each analysed job's urgency, who acknowledged a critical one and when, and which
critical results wait too long for an acknowledgement."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import Session

from db.audit import record_audit
from db.jobs import get_job
from db.models import AuditKind, Delivery, Job, MessagePurpose, ResultKind, ResultObject, Study, Urgency, utcnow


class AcknowledgementError(ValueError):
    """The job is not a critical result (nothing to acknowledge)."""


@dataclass(frozen=True)
class CriticalResult:
    job_id: int
    study_id: int
    received_at: datetime
    """The study's last received instance: the clock of "time since receipt"."""
    acknowledged_at: datetime | None
    acknowledged_by: str | None


def set_model(session: Session, job_id: int, version: str, weights_sha256: str | None) -> None:
    """Which model version and weights made the job's results (IHE AIR: every result names its algorithm)."""
    job = get_job(session, job_id)
    job.detector_version = version[:64]
    job.weights_sha256 = weights_sha256


def set_urgency(session: Session, job_id: int, urgency: Urgency) -> None:
    """A re-run sets it again; an acknowledgement stays only while the job is still critical."""
    job = get_job(session, job_id)
    if urgency is not Urgency.CRITICAL:
        job.acknowledged_at = None
        job.acknowledged_by = None
    job.urgency = urgency


def acknowledge(session: Session, job_id: int, actor: str) -> bool:
    """Record that ``actor`` acknowledged the critical result; False if it already was (the first one stands)."""
    job = get_job(session, job_id)
    if job.urgency is not Urgency.CRITICAL:
        raise AcknowledgementError(f"job {job_id} is not a critical result")
    if job.acknowledged_at is not None:
        return False
    job.acknowledged_at = utcnow()
    job.acknowledged_by = actor
    record_audit(session, AuditKind.OPERATOR_ACTION, None, None, f"acknowledged critical result of job {job_id}", actor)
    return True


SHOWN = or_(Job.shadow.is_(False), Job.released_at.is_not(None))
"""A result someone is meant to see: made live, or a shadow result an operator released."""


def _critical() -> Select[int, int, datetime, datetime | None, str | None]:
    return (
        select(Job.id, Job.study_id, Study.last_received_at, Job.acknowledged_at, Job.acknowledged_by)
        .join(Study, Study.id == Job.study_id)
        .where(Job.urgency == Urgency.CRITICAL, SHOWN)
    )


def critical_results(session: Session, unacknowledged_only: bool = False) -> list[CriticalResult]:
    """Critical results, the longest-waiting first."""
    query = _critical().order_by(Study.last_received_at, Job.id)
    if unacknowledged_only:
        query = query.where(Job.acknowledged_at.is_(None))
    return [
        CriticalResult(job_id, study_id, received_at, acknowledged_at, acknowledged_by)
        for job_id, study_id, received_at, acknowledged_at, acknowledged_by in session.execute(query).all()
    ]


def overdue_for_reminder(session: Session, older_than: timedelta, now: datetime | None = None) -> list[int]:
    """Unacknowledged critical jobs received before ``now - older_than`` that have had no reminder yet."""
    cutoff = (now or utcnow()) - older_than
    reminded = (
        select(ResultObject.job_id)
        .join(Delivery, Delivery.result_object_id == ResultObject.id)
        .where(Delivery.purpose == MessagePurpose.REMINDER)
    )
    query = (
        select(Job.id)
        .join(Study, Study.id == Job.study_id)
        .where(Job.urgency == Urgency.CRITICAL, Job.acknowledged_at.is_(None), SHOWN)
        .where(Study.last_received_at < cutoff, Job.id.not_in(reminded))
        .order_by(Job.id)
    )
    return list(session.scalars(query))


def job_sr(session: Session, job_id: int) -> int | None:
    """The id of the job's SR result object: what its messages are about."""
    return session.scalar(
        select(ResultObject.id).where(ResultObject.job_id == job_id, ResultObject.kind == ResultKind.SR)
    )


def jobs_by_urgency(session: Session) -> dict[Urgency, int]:
    rows = session.execute(select(Job.urgency, func.count()).where(Job.urgency.is_not(None)).group_by(Job.urgency))
    return {urgency: count for urgency, count in rows.all() if urgency is not None}


def acknowledgement_seconds(session: Session) -> list[float]:
    """Time from receipt to acknowledgement of every acknowledged critical result (the dashboard's histogram)."""
    rows = session.execute(
        select(Study.last_received_at, Job.acknowledged_at)
        .join(Job, Job.study_id == Study.id)
        .where(Job.urgency == Urgency.CRITICAL, Job.acknowledged_at.is_not(None))
    )
    return [(acked - received).total_seconds() for received, acked in rows.all() if acked is not None]
