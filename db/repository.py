"""Repository functions: the only place SQL lives. Each takes a Session; the caller owns the transaction."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from db.models import (
    Delivery,
    DeliveryState,
    AuditEvent,
    AuditKind,
    Finding,
    Instance,
    Job,
    JobEvent,
    JobState,
    ResultKind,
    ResultObject,
    Study,
    TERMINAL_JOB_STATES,
    utcnow,
)
from db.records import (
    FindingRecord,
    InstanceFacts,
    InstanceSummary,
    JobSummary,
    JobWork,
    QueueOverview,
    RecordOutcome,
    ResultRecord,
    StudyFacts,
)

logger = logging.getLogger(__name__)


class NotFoundError(LookupError):
    """A row named by id does not exist."""


# --- receive -----------------------------------------------------------------------------------------------------


def record_instance(session: Session, facts: InstanceFacts, completion_fallback_at: datetime) -> RecordOutcome:
    """Insert the instance (and its study on first sight). A duplicate SOP instance changes nothing."""
    study = session.scalars(
        select(Study).where(Study.study_instance_uid == facts.study_instance_uid).with_for_update()
    ).one_or_none()
    now = utcnow()
    if study is None:
        study = Study(
            study_instance_uid=facts.study_instance_uid,
            study_description=facts.study_description,
            first_received_at=now,
            last_received_at=now,
        )
        session.add(study)
        session.flush()
    existing = session.scalar(select(Instance.id).where(Instance.sop_instance_uid == facts.sop_instance_uid))
    if existing is not None:
        return RecordOutcome(study_id=study.id, created=False)
    session.add(
        Instance(
            study_id=study.id,
            sop_instance_uid=facts.sop_instance_uid,
            sop_class_uid=facts.sop_class_uid,
            series_instance_uid=facts.series_instance_uid,
            transfer_syntax_uid=facts.transfer_syntax_uid,
            modality=facts.modality,
            body_part_examined=facts.body_part_examined,
            view_position=facts.view_position,
            patient_age_years=facts.patient_age_years,
            calling_ae_title=facts.calling_ae_title,
            spool_path=str(facts.spool_path),
            received_at=now,
        )
    )
    study.last_received_at = now
    study.completion_due_at = completion_fallback_at
    study.stat = study.stat or facts.stat
    session.flush()
    return RecordOutcome(study_id=study.id, created=True)


def schedule_completion(session: Session, study_ids: Iterable[int], due_at: datetime) -> None:
    """Bring forward completion of studies that still wait for it (their association was released)."""
    ids = list(study_ids)
    if not ids:
        return
    session.execute(
        update(Study)
        .where(Study.id.in_(ids), Study.completion_due_at.is_not(None), Study.completion_due_at > due_at)
        .values(completion_due_at=due_at)
    )


def claim_due_studies(session: Session, now: datetime) -> list[int]:
    """Studies whose completion time has come; clears their due time so only one caller claims each."""
    ids = list(
        session.scalars(
            select(Study.id)
            .where(Study.completion_due_at.is_not(None), Study.completion_due_at <= now)
            .order_by(Study.completion_due_at)
            .with_for_update(skip_locked=True)
        )
    )
    if ids:
        session.execute(update(Study).where(Study.id.in_(ids)).values(completion_due_at=None))
    return ids


def _instance_summary(instance: Instance) -> InstanceSummary:
    return InstanceSummary(
        instance_id=instance.id,
        sop_instance_uid=instance.sop_instance_uid,
        sop_class_uid=instance.sop_class_uid,
        modality=instance.modality,
        body_part_examined=instance.body_part_examined,
        view_position=instance.view_position,
        calling_ae_title=instance.calling_ae_title,
        spool_path=Path(instance.spool_path),
        patient_age_years=instance.patient_age_years,
    )


def study_facts(session: Session, study_id: int) -> StudyFacts:
    study = session.get(Study, study_id)
    if study is None:
        raise NotFoundError(f"study {study_id} does not exist")
    return StudyFacts(
        study_id=study.id,
        study_description=study.study_description,
        instances=tuple(_instance_summary(i) for i in study.instances),
    )


# --- jobs --------------------------------------------------------------------------------------------------------


LEASED_STATES = frozenset({JobState.QUEUED, JobState.ANALYZING})


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
    job = Job(study_id=study_id, detector=detector, state=state, reason=reason, attempts=0,
              lease_expires_at=lease_expires_at if state in LEASED_STATES else None)
    session.add(job)
    session.flush()
    _stamp_timings(job, state, utcnow())
    session.add(JobEvent(job_id=job.id, state=state, detail=reason))
    return job.id


ANALYSIS_ENDS = frozenset({JobState.ENCODED, JobState.NOT_ELIGIBLE, JobState.FAILED})


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


def _job(session: Session, job_id: int) -> Job:
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
    """Move a job to ``state`` and append the JobEvent that records it; only QUEUED and ANALYZING hold a lease."""
    job = _job(session, job_id)
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


def start_attempt(session: Session, job_id: int, lease_expires_at: datetime, max_attempts: int,
                  worker: str = "") -> JobWork:
    """Mark the job ANALYZING under a lease, count the attempt (and name the worker), and return what it needs."""
    job = _job(session, job_id)
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
        instances=tuple(_instance_summary(i) for i in job.study.instances),
        attempt=job.attempts,
    )


def reset_attempts(session: Session, job_id: int) -> None:
    """An operator's requeue gives the job a fresh set of attempts."""
    _job(session, job_id).attempts = 0


def job_is_stat(session: Session, job_id: int) -> bool:
    """Whether the job's study takes the STAT lane."""
    return bool(session.scalar(select(Study.stat).join(Job, Job.study_id == Study.id).where(Job.id == job_id)))


def job_state(session: Session, job_id: int) -> JobState:
    return _job(session, job_id).state


def job_summary(session: Session, job_id: int) -> JobSummary:
    job = _job(session, job_id)
    return JobSummary(job.id, job.study_id, job.state, job.reason, job.detector, job.attempts, job.lease_expires_at)


def list_jobs(session: Session, study_instance_uid: str | None = None) -> list[JobSummary]:
    query = select(Job).order_by(Job.id)
    if study_instance_uid is not None:
        query = query.join(Study).where(Study.study_instance_uid == study_instance_uid)
    return [
        JobSummary(j.id, j.study_id, j.state, j.reason, j.detector, j.attempts, j.lease_expires_at)
        for j in session.scalars(query)
    ]


def job_events(session: Session, job_id: int) -> list[tuple[JobState, str | None]]:
    return [(e.state, e.detail) for e in _job(session, job_id).events]


def queue_overview(session: Session) -> QueueOverview:
    oldest = session.execute(
        select(Job.id, Job.created_at).where(Job.state == JobState.QUEUED).order_by(Job.created_at, Job.id).limit(1)
    ).first()
    pending = session.scalar(
        select(func.count()).select_from(Delivery).where(
            Delivery.state.in_([DeliveryState.PENDING, DeliveryState.COMMIT_PENDING])
        )
    )
    return QueueOverview(
        jobs_by_state=job_counts_by_state(session),
        pending_deliveries=int(pending or 0),
        oldest_waiting_job=oldest[0] if oldest else None,
        oldest_waiting_since=oldest[1] if oldest else None,
    )


def job_counts_by_state(session: Session) -> dict[JobState, int]:
    rows = session.execute(select(Job.state, func.count()).group_by(Job.state))
    return {state: count for state, count in rows.all()}


# --- findings and results ----------------------------------------------------------------------------------------


def replace_findings(session: Session, job_id: int, findings: Sequence[FindingRecord]) -> None:
    """A re-run replaces the job's findings rather than adding to them."""
    for old in _job(session, job_id).findings:
        session.delete(old)
    session.flush()
    for f in findings:
        x_min, y_min, x_max, y_max = f.box if f.box is not None else (None, None, None, None)
        session.add(
            Finding(
                job_id=job_id,
                instance_id=f.instance_id,
                label=f.label,
                code_scheme=f.code_scheme,
                code_value=f.code_value,
                code_meaning=f.code_meaning,
                probability=f.probability,
                x_min=x_min,
                y_min=y_min,
                x_max=x_max,
                y_max=y_max,
            )
        )


def finding_record(f: Finding) -> FindingRecord:
    return FindingRecord(
        instance_id=f.instance_id,
        label=f.label,
        code_scheme=f.code_scheme,
        code_value=f.code_value,
        code_meaning=f.code_meaning,
        probability=f.probability,
        box=None if f.x_min is None else (f.x_min, f.y_min or 0.0, f.x_max or 0.0, f.y_max or 0.0),
    )


def job_findings(session: Session, job_id: int) -> list[FindingRecord]:
    return [finding_record(f) for f in _job(session, job_id).findings]


def upsert_result_object(session: Session, job_id: int, record: ResultRecord) -> int:
    """Deterministic UIDs make a re-run produce the same object: update its row instead of adding one."""
    existing = session.scalars(
        select(ResultObject).where(ResultObject.sop_instance_uid == record.sop_instance_uid)
    ).one_or_none()
    if existing is None:
        existing = ResultObject(sop_instance_uid=record.sop_instance_uid)
        session.add(existing)
    existing.job_id = job_id
    existing.kind = record.kind
    existing.sop_class_uid = record.sop_class_uid
    existing.series_instance_uid = record.series_instance_uid
    existing.path = str(record.path)
    session.flush()
    return existing.id


def earlier_results(session: Session, job_id: int, kind: ResultKind) -> list[ResultRecord]:
    """Objects of ``kind`` that earlier jobs of the same study produced (what a follow-up SR supersedes)."""
    job = _job(session, job_id)
    rows = session.scalars(
        select(ResultObject)
        .join(Job)
        .where(Job.study_id == job.study_id, Job.id < job_id, ResultObject.kind == kind)
        .order_by(ResultObject.id)
    )
    return [ResultRecord(r.kind, r.sop_class_uid, r.sop_instance_uid, r.series_instance_uid, Path(r.path)) for r in rows]


def job_results(session: Session, job_id: int) -> list[ResultRecord]:
    return [
        ResultRecord(r.kind, r.sop_class_uid, r.sop_instance_uid, r.series_instance_uid, Path(r.path))
        for r in _job(session, job_id).results
    ]


# --- audit -------------------------------------------------------------------------------------------------------


def record_audit(
    session: Session,
    kind: AuditKind,
    calling_ae_title: str | None,
    peer_address: str | None,
    detail: str | None,
    actor: str | None = None,
) -> None:
    session.add(
        AuditEvent(kind=kind, calling_ae_title=calling_ae_title, peer_address=peer_address, detail=detail, actor=actor)
    )


def audit_events(session: Session, kind: AuditKind | None = None) -> list[tuple[AuditKind, str | None, str | None]]:
    query = select(AuditEvent).order_by(AuditEvent.id)
    if kind is not None:
        query = query.where(AuditEvent.kind == kind)
    return [(a.kind, a.calling_ae_title, a.peer_address) for a in session.scalars(query)]
