"""Read models for the dashboard: the queries behind its pages, and only those (``metrics_queries`` has /metrics').

Nothing here returns patient-identifying data: studies are named by row id and a keyed digest of their UID.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from dashboard.search import JobFilter
from db.errors import NotFoundError
from db.jobs import JobSummary
from db.models import (
    Delivery,
    DeliveryState,
    Finding,
    Job,
    JobState,
    MessagePurpose,
    ResultObject,
    Study,
    Urgency,
)
from db.overview import QueueOverview, queue_overview
from db.results import FindingRecord, finding_record
from db.studies import InstanceHeader, instance_header

FAILED_JOB_STATES = (JobState.FAILED, JobState.DEAD_LETTER)


@dataclass(frozen=True)
class WindowStats:
    """Jobs finished in a window: how many, their end-to-end latency, and a throughput series for a small chart."""

    span: timedelta
    finished: int
    p50_seconds: float | None
    p95_seconds: float | None
    bucket_span: timedelta
    buckets: tuple[int, ...]
    bucket_p50_seconds: tuple[float | None, ...] = ()
    """Each bucket's median end-to-end latency (None: nothing finished in it)."""


@dataclass(frozen=True, kw_only=True)
class JobRow(JobSummary):
    """A job as the dashboard lists it: its summary, plus its timings and findings."""

    received_at: datetime
    finished_at: datetime | None
    analysis_seconds: float | None
    end_to_end_seconds: float | None
    findings: int
    top_probability: float | None
    urgency: Urgency | None = None
    acknowledged_at: datetime | None = None
    acknowledged_by: str | None = None
    shadow: bool = False
    """Made in shadow mode: withheld from the destinations in shadow (until released)."""
    released_at: datetime | None = None


@dataclass(frozen=True)
class JobPage:
    rows: tuple[JobRow, ...]
    total: int
    page: int
    per_page: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))


@dataclass(frozen=True)
class Overview:
    queue: QueueOverview
    """The same figures ``cxr status`` prints."""
    recent_failures: tuple[JobRow, ...]
    hour: WindowStats
    day: WindowStats


@dataclass(frozen=True)
class EventRow:
    at: datetime
    state: JobState
    detail: str | None


@dataclass(frozen=True)
class AttemptRow:
    at: datetime
    outcome: DeliveryState
    error: str | None


@dataclass(frozen=True)
class DeliveryRow:
    delivery_id: int
    destination_name: str
    state: DeliveryState
    attempts: int
    last_error: str | None
    updated_at: datetime
    history: tuple[AttemptRow, ...] = ()
    channel: str = "DICOM"
    """DICOM (the object itself), or HL7, FHIR or WEBHOOK (a message about the SR)."""


@dataclass(frozen=True)
class ResultRow:
    result_id: int
    kind: str
    sop_instance_uid: str
    """Ours, a hash of the source's UIDs and the model (``worker.encode.uids``) that reveals neither: shown, so an
    admin can find the object in the PACS."""
    series_number: int | None
    instance_number: int | None
    size_bytes: int | None
    """The file's size as sent (None once retention removed it)."""
    deliveries: tuple[DeliveryRow, ...]
    superseded_by_job: int | None = None
    """For an SR a later job's SR replaced: that job (the chain of a study's results)."""


@dataclass(frozen=True)
class JobDetail:
    row: JobRow
    events: tuple[EventRow, ...]
    findings: tuple[FindingRecord, ...]
    results: tuple[ResultRow, ...]


@dataclass(frozen=True)
class StudyDetail:
    study_id: int
    study_instance_uid: str
    stat: bool
    study_description: str | None
    first_received_at: datetime
    last_received_at: datetime
    instances: tuple[InstanceHeader, ...]
    jobs: tuple[JobDetail, ...]


# --- overview ----------------------------------------------------------------------------------------------------


def overview(session: Session, now: datetime) -> Overview:
    failures = _job_query().where(Job.state.in_(FAILED_JOB_STATES)).order_by(Job.updated_at.desc(), Job.id.desc())
    return Overview(
        queue=queue_overview(session),
        recent_failures=tuple(_job_rows(session, failures.limit(10))),
        hour=window_stats(session, now, timedelta(hours=1), 12),
        day=window_stats(session, now, timedelta(days=1), 24),
    )


def window_stats(session: Session, now: datetime, span: timedelta, bucket_count: int) -> WindowStats:
    start = now - span
    rows = session.execute(
        select(Job.finished_at, Job.end_to_end_seconds).where(Job.finished_at >= start, Job.finished_at <= now)
    ).all()
    bucket_span = span / bucket_count
    buckets = [0] * bucket_count
    per_bucket: list[list[float]] = [[] for _ in range(bucket_count)]
    latencies = []
    for finished_at, seconds in rows:
        if finished_at is None:
            continue
        index = min(bucket_count - 1, int((finished_at - start) / bucket_span))
        buckets[index] += 1
        if seconds is not None:
            latencies.append(seconds)
            per_bucket[index].append(seconds)
    p50, p95 = (float(v) for v in np.percentile(latencies, [50, 95])) if latencies else (None, None)
    medians = tuple(float(np.median(values)) if values else None for values in per_bucket)
    return WindowStats(span, len(rows), p50, p95, bucket_span, tuple(buckets), medians)


# --- job list ----------------------------------------------------------------------------------------------------


def _job_query() -> Select[Job, datetime, int, float | None]:
    findings = (
        select(Finding.job_id, func.count().label("n"), func.max(Finding.probability).label("top"))
        .group_by(Finding.job_id)
        .subquery()
    )
    return (
        select(Job, Study.last_received_at, func.coalesce(findings.c.n, 0), findings.c.top)
        .join(Study, Study.id == Job.study_id)
        .outerjoin(findings, findings.c.job_id == Job.id)
    )


def _job_rows(session: Session, query: Select[Job, datetime, int, float | None]) -> list[JobRow]:
    return [
        JobRow(
            job_id=job.id,
            study_id=job.study_id,
            state=job.state,
            reason=job.reason,
            detector=job.detector,
            attempts=job.attempts,
            lease_expires_at=job.lease_expires_at,
            received_at=received_at,
            finished_at=job.finished_at,
            analysis_seconds=job.analysis_seconds,
            end_to_end_seconds=job.end_to_end_seconds,
            findings=int(count),
            top_probability=top,
            urgency=job.urgency,
            acknowledged_at=job.acknowledged_at,
            acknowledged_by=job.acknowledged_by,
            shadow=job.shadow,
            released_at=job.released_at,
        )
        for job, received_at, count, top in session.execute(query).all()
    ]


def job_page(session: Session, page: int, per_page: int, search: JobFilter, digest_key: str) -> JobPage:
    """Newest first; filtered as ``search`` says (``dashboard.search``)."""
    conditions = search.conditions(digest_key)
    counted = select(func.count()).select_from(Job).join(Study, Study.id == Job.study_id).where(*conditions)
    total = session.scalar(counted) or 0
    page = max(1, page)
    query = _job_query().where(*conditions).order_by(Job.id.desc()).offset((page - 1) * per_page).limit(per_page)
    return JobPage(tuple(_job_rows(session, query)), int(total), page, per_page)


def detectors_in_use(session: Session) -> list[str]:
    return list(session.scalars(select(Job.detector).distinct().order_by(Job.detector)))


# --- study detail ------------------------------------------------------------------------------------------------


def study_detail(session: Session, study_id: int) -> StudyDetail:
    study = session.get(Study, study_id)
    if study is None:
        raise NotFoundError(f"study {study_id} does not exist")
    rows = {r.job_id: r for r in _job_rows(session, _job_query().where(Job.study_id == study_id))}
    return StudyDetail(
        study_id=study.id,
        study_instance_uid=study.study_instance_uid,
        stat=study.stat,
        study_description=study.study_description,
        first_received_at=study.first_received_at,
        last_received_at=study.last_received_at,
        instances=tuple(instance_header(i) for i in study.instances),
        jobs=tuple(_job_detail(job, rows[job.id]) for job in reversed(study.jobs)),
    )


def _job_detail(job: Job, row: JobRow) -> JobDetail:
    return JobDetail(
        row=row,
        events=tuple(EventRow(e.at, e.state, e.detail) for e in job.events),
        findings=tuple(finding_record(f) for f in job.findings),
        results=tuple(_result_row(r) for r in job.results),
    )


def _result_row(r: ResultObject) -> ResultRow:
    return ResultRow(
        r.id,
        r.kind.value,
        r.sop_instance_uid,
        r.series_number,
        r.instance_number,
        _file_size(r.path) if r.purged_at is None else None,
        tuple(
            DeliveryRow(
                d.id,
                d.destination_name,
                d.state,
                d.attempts,
                d.last_error,
                d.updated_at,
                tuple(AttemptRow(a.at, a.outcome, a.error) for a in d.attempt_log),
                d.channel.value if d.purpose is MessagePurpose.RESULT else f"{d.channel.value} reminder",
            )
            for d in r.deliveries
        ),
        superseded_by_job=r.superseded_by.job_id if r.superseded_by is not None else None,
    )


def _file_size(path: str) -> int | None:
    try:
        return os.stat(path).st_size
    except OSError:
        return None


def study_of_job(session: Session, job_id: int) -> int:
    study_id = session.scalar(select(Job.study_id).where(Job.id == job_id))
    if study_id is None:
        raise NotFoundError(f"job {job_id} does not exist")
    return study_id


def study_of_delivery(session: Session, delivery_id: int) -> int:
    study_id = session.scalar(
        select(Job.study_id)
        .join(ResultObject, ResultObject.job_id == Job.id)
        .join(Delivery, Delivery.result_object_id == ResultObject.id)
        .where(Delivery.id == delivery_id)
    )
    if study_id is None:
        raise NotFoundError(f"delivery {delivery_id} does not exist")
    return study_id


def result_object_path(session: Session, result_id: int) -> tuple[int, str, str]:
    """(study id, kind, path) of a result object."""
    row = session.execute(
        select(Job.study_id, ResultObject.kind, ResultObject.path).join(Job).where(ResultObject.id == result_id)
    ).first()
    if row is None:
        raise NotFoundError(f"result object {result_id} does not exist")
    return row[0], row[1].value, row[2]
