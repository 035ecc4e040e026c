"""Repository functions for retention: which spooled instances, result files and whole studies' records may go, and
recording that they went. Nothing that work in progress needs is ever offered: a study still to complete, a job not in
a terminal state, or a delivery still to be sent or committed."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, and_, delete, exists, func, or_, select, update
from sqlalchemy.orm import InstrumentedAttribute, Session, aliased

from db.deliveries import WAITING_DELIVERY_STATES
from db.lifecycle import BUSY_JOB_STATES, SUCCEEDED_JOB_STATES
from db.models import (
    AuditEvent,
    Delivery,
    DeliveryAttempt,
    Finding,
    Instance,
    Job,
    JobEvent,
    LabelScore,
    ResultObject,
    Study,
    utcnow,
)


def purgeable_instances(
    session: Session, after_delivery: bool, received_before: datetime | None, limit: int = 500
) -> list[tuple[int, str]]:
    """(id, spool path) of spooled instances retention may remove.

    Never one whose study is still to be completed or has a job in progress. Otherwise: after delivery, when the
    study's latest job is delivered (or completed); and, whatever happened, once older than ``received_before``."""
    latest = aliased(Job)
    newer = aliased(Job)
    latest_finished = exists(
        select(latest.id).where(
            latest.study_id == Instance.study_id,
            latest.state.in_(SUCCEEDED_JOB_STATES),
            ~exists(select(newer.id).where(newer.study_id == latest.study_id, newer.id > latest.id)),
        )
    )
    busy = exists(select(Job.id).where(Job.study_id == Instance.study_id, Job.state.in_(BUSY_JOB_STATES)))
    pending = exists(select(Study.id).where(Study.id == Instance.study_id, Study.completion_due_at.is_not(None)))
    reasons: list[ColumnElement[bool]] = []
    if after_delivery:
        reasons.append(latest_finished)
    if received_before is not None:
        reasons.append(Instance.received_at < received_before)
    if not reasons:
        return []
    rows = session.execute(
        select(Instance.id, Instance.spool_path)
        .where(Instance.purged_at.is_(None), ~busy, ~pending, or_(*reasons))
        .order_by(Instance.id)
        .limit(limit)
    )
    return [(row[0], row[1]) for row in rows]


def mark_purged(session: Session, instance_ids: list[int]) -> None:
    if instance_ids:
        session.execute(
            update(Instance)
            .where(and_(Instance.id.in_(instance_ids), Instance.purged_at.is_(None)))
            .values(purged_at=utcnow())
        )


def study_purged(session: Session, study_id: int) -> bool:
    """Whether retention removed any of the study's spooled files (it can then not be analysed again)."""
    return bool(
        session.scalar(
            select(exists(select(Instance.id).where(Instance.study_id == study_id, Instance.purged_at.is_not(None))))
        )
    )


def _unsettled(study_id: ColumnElement[int] | InstrumentedAttribute[int]) -> ColumnElement[bool]:
    """The study has work in progress: completion pending, a job not terminal, or a delivery not settled."""
    busy = exists(select(Job.id).where(Job.study_id == study_id, Job.state.in_(BUSY_JOB_STATES)))
    pending = exists(select(Study.id).where(Study.id == study_id, Study.completion_due_at.is_not(None)))
    waiting = exists(
        select(Delivery.id)
        .join(ResultObject, ResultObject.id == Delivery.result_object_id)
        .join(Job, Job.id == ResultObject.job_id)
        .where(Job.study_id == study_id, Delivery.state.in_(WAITING_DELIVERY_STATES))
    )
    return or_(busy, pending, waiting)


def purgeable_results(session: Session, finished_before: datetime, limit: int = 500) -> list[tuple[int, str]]:
    """(id, path) of result objects whose job finished before ``finished_before`` in a study with nothing in
    progress, and whose file is still on disk."""
    rows = session.execute(
        select(ResultObject.id, ResultObject.path)
        .join(Job, Job.id == ResultObject.job_id)
        .where(ResultObject.purged_at.is_(None), Job.finished_at < finished_before, ~_unsettled(Job.study_id))
        .order_by(ResultObject.id)
        .limit(limit)
    )
    return [(row[0], row[1]) for row in rows]


def mark_results_purged(session: Session, result_ids: list[int]) -> None:
    if result_ids:
        session.execute(
            update(ResultObject)
            .where(ResultObject.id.in_(result_ids), ResultObject.purged_at.is_(None))
            .values(purged_at=utcnow())
        )


@dataclass(frozen=True)
class StudyFiles:
    """A study whose records may go, and the files that go first."""

    study_id: int
    spool_paths: list[str]
    result_paths: list[str]


def purgeable_studies(session: Session, idle_before: datetime, limit: int = 100) -> list[StudyFiles]:
    """Studies with nothing in progress and no activity (an instance received, a job moved) since ``idle_before``."""
    last_job_move = select(func.max(Job.updated_at)).where(Job.study_id == Study.id).scalar_subquery()
    ids = list(
        session.scalars(
            select(Study.id)
            .where(
                Study.last_received_at < idle_before,
                or_(last_job_move.is_(None), last_job_move < idle_before),
                ~_unsettled(Study.id),
            )
            .order_by(Study.id)
            .limit(limit)
        )
    )
    found = []
    for study_id in ids:
        spooled = session.scalars(select(Instance.spool_path).where(Instance.study_id == study_id))
        made = session.scalars(
            select(ResultObject.path).join(Job, Job.id == ResultObject.job_id).where(Job.study_id == study_id)
        )
        found.append(StudyFiles(study_id, list(spooled), list(made)))
    return found


def delete_study_records(session: Session, study_id: int) -> bool:
    """Every row about the study, in one transaction (the caller's); False when work arrived for it meanwhile."""
    unsettled = session.execute(select(Study.id).where(Study.id == study_id, _unsettled(Study.id))).first()
    if unsettled is not None:
        return False
    job_ids = select(Job.id).where(Job.study_id == study_id)
    result_ids = select(ResultObject.id).where(ResultObject.job_id.in_(job_ids))
    delivery_ids = select(Delivery.id).where(Delivery.result_object_id.in_(result_ids))
    session.execute(delete(DeliveryAttempt).where(DeliveryAttempt.delivery_id.in_(delivery_ids)))
    session.execute(delete(Delivery).where(Delivery.result_object_id.in_(result_ids)))
    session.execute(update(ResultObject).where(ResultObject.id.in_(result_ids)).values(superseded_by_id=None))
    session.execute(delete(ResultObject).where(ResultObject.job_id.in_(job_ids)))
    session.execute(delete(Finding).where(Finding.job_id.in_(job_ids)))
    session.execute(delete(LabelScore).where(LabelScore.job_id.in_(job_ids)))
    session.execute(delete(JobEvent).where(JobEvent.job_id.in_(job_ids)))
    session.execute(delete(Job).where(Job.study_id == study_id))
    session.execute(delete(Instance).where(Instance.study_id == study_id))
    session.execute(delete(Study).where(Study.id == study_id))
    return True


def delete_audit_before(session: Session, before: datetime) -> int:
    result = session.execute(delete(AuditEvent).where(AuditEvent.at < before))
    return int(getattr(result, "rowcount", 0) or 0)
