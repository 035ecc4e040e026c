"""Repository functions for retention: which spooled instances may go, and recording that they went."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ColumnElement, and_, exists, or_, select, update
from sqlalchemy.orm import Session, aliased

from db.lifecycle import BUSY_JOB_STATES, SUCCEEDED_JOB_STATES
from db.models import Instance, Job, Study, utcnow


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
