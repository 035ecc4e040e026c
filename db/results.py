"""Findings and result objects: what an analysis produced, recorded so a re-run replaces rather than adds."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from db.errors import NotFoundError
from db.jobs import get_job
from db.models import Finding, Instance, Job, JobEvent, LabelScore, ResultKind, ResultObject, utcnow


@dataclass(frozen=True)
class FindingRecord:
    instance_id: int
    label: str
    code_scheme: str
    code_value: str
    code_meaning: str
    probability: float
    box: tuple[float, float, float, float] | None


@dataclass(frozen=True)
class ScoreRecord:
    """One label's score on one image, and whether it was reported as a finding."""

    instance_id: int
    label: str
    score: float
    positive: bool


@dataclass(frozen=True)
class ResultRecord:
    kind: ResultKind
    sop_class_uid: str
    sop_instance_uid: str
    series_instance_uid: str
    path: Path
    series_number: int | None = None
    instance_number: int | None = None


def replace_findings(session: Session, job_id: int, findings: Sequence[FindingRecord]) -> None:
    """A re-run replaces the job's findings rather than adding to them."""
    for old in get_job(session, job_id).findings:
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


def replace_scores(session: Session, job_id: int, scores: Sequence[ScoreRecord]) -> None:
    """A re-run replaces the job's label scores, as it does its findings."""
    session.execute(delete(LabelScore).where(LabelScore.job_id == job_id))
    session.add_all(
        LabelScore(job_id=job_id, instance_id=s.instance_id, label=s.label, score=s.score, positive=s.positive)
        for s in scores
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
    return [finding_record(f) for f in get_job(session, job_id).findings]


def upsert_result_object(session: Session, job_id: int, record: ResultRecord) -> int:
    """Deterministic UIDs make a re-run produce the same object: update its row instead of adding one.

    An object an earlier job of the study produced (the same UID: the same source, unchanged) stays that job's row,
    with its deliveries; the follow-up job reuses it (``result_job`` tells) and sends nothing for it."""
    existing = session.scalars(
        select(ResultObject).where(ResultObject.sop_instance_uid == record.sop_instance_uid)
    ).one_or_none()
    if existing is not None and existing.job_id != job_id:
        return existing.id
    if existing is None:
        existing = ResultObject(sop_instance_uid=record.sop_instance_uid)
        session.add(existing)
    existing.job_id = job_id
    existing.kind = record.kind
    existing.sop_class_uid = record.sop_class_uid
    existing.series_instance_uid = record.series_instance_uid
    existing.series_number = record.series_number
    existing.instance_number = record.instance_number
    existing.path = str(record.path)
    session.flush()
    return existing.id


def result_job(session: Session, result_id: int) -> int:
    """The job that produced the result object."""
    job_id = session.scalar(select(ResultObject.job_id).where(ResultObject.id == result_id))
    if job_id is None:
        raise NotFoundError(f"result object {result_id} does not exist")
    return job_id


def supersede_earlier_srs(session: Session, job_id: int, sr_result_id: int) -> list[int]:
    """Mark the SRs of the study's earlier jobs as superseded by this job's SR; returns their ids. Their rows stay
    with their jobs."""
    job = get_job(session, job_id)
    earlier = session.scalars(
        select(ResultObject)
        .join(Job)
        .where(
            Job.study_id == job.study_id,
            Job.id < job_id,
            ResultObject.kind == ResultKind.SR,
            ResultObject.id != sr_result_id,
            ResultObject.superseded_at.is_(None),
        )
    ).all()
    now = utcnow()
    for row in earlier:
        row.superseded_by_id = sr_result_id
        row.superseded_at = now
        # On the earlier job's timeline, in the state it keeps: its SR is no longer the study's current result.
        session.add(JobEvent(job_id=row.job_id, state=row.job.state, detail=f"SR superseded by job {job_id}'s SR"))
    return [row.id for row in earlier]


def _record(r: ResultObject) -> ResultRecord:
    return ResultRecord(r.kind, r.sop_class_uid, r.sop_instance_uid, r.series_instance_uid, Path(r.path))


def earlier_results(session: Session, job_id: int, kind: ResultKind) -> list[ResultRecord]:
    """Objects of ``kind`` that earlier jobs of the same study produced (what a follow-up SR supersedes)."""
    job = get_job(session, job_id)
    rows = session.scalars(
        select(ResultObject)
        .join(Job)
        .where(Job.study_id == job.study_id, Job.id < job_id, ResultObject.kind == kind)
        .order_by(ResultObject.id)
    )
    return [_record(r) for r in rows]


@dataclass(frozen=True)
class ResultRow:
    id: int
    kind: ResultKind
    sop_instance_uid: str


def job_result_rows(session: Session, job_id: int) -> list[ResultRow]:
    return [ResultRow(r.id, r.kind, r.sop_instance_uid) for r in get_job(session, job_id).results]


def job_results(session: Session, job_id: int) -> list[ResultRecord]:
    return [_record(r) for r in get_job(session, job_id).results]


def finding_source_uids(session: Session, job_id: int) -> dict[int, str]:
    """instance id → SOP Instance UID of every image the job's findings are on."""
    rows = session.execute(
        select(Instance.id, Instance.sop_instance_uid)
        .join(Finding, Finding.instance_id == Instance.id)
        .where(Finding.job_id == job_id)
    )
    return dict(rows.all())
