"""IOCM rejections: instances the PACS withdrew (a Key Object Selection whose title is a rejection reason).

A rejected instance keeps its row and is never analysed again. Work still queued for its study is cancelled, and the
study is completed again: the worker that takes the new job withdraws earlier results made from rejected images and
analyses what remains.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from db.jobs import transition_job
from db.models import Instance, Job, JobState, ResultKind, ResultObject, Study, utcnow


@dataclass(frozen=True)
class RejectionOutcome:
    rejected: int
    """Instances newly marked rejected (ones we do not hold, or already rejected, are not counted)."""
    study_ids: tuple[int, ...]
    cancelled_jobs: tuple[int, ...]


def reject_instances(
    session: Session, sop_instance_uids: Sequence[str], code: str, completion_due_at: datetime
) -> RejectionOutcome:
    now = utcnow()
    rows = session.scalars(
        select(Instance)
        .where(Instance.sop_instance_uid.in_(list(sop_instance_uids)), Instance.rejected_at.is_(None))
        .with_for_update()
    ).all()
    study_ids = sorted({row.study_id for row in rows})
    for row in rows:
        row.rejected_at = now
        row.rejection_code = code
    cancelled: list[int] = []
    for study_id in study_ids:
        queued = session.scalars(select(Job.id).where(Job.study_id == study_id, Job.state == JobState.QUEUED))
        for job_id in list(queued):
            transition_job(session, job_id, JobState.CANCELLED, reason=f"images rejected by the PACS ({code})")
            cancelled.append(job_id)
        study = session.get(Study, study_id)
        if study is not None:
            study.completion_due_at = completion_due_at
    session.flush()
    return RejectionOutcome(len(rows), tuple(study_ids), tuple(cancelled))


def tainted_jobs(session: Session, study_id: int, before_job_id: int) -> list[tuple[int, str]]:
    """(job id, rejection code) of earlier jobs of the study whose analysis began after a now-rejected image was
    received (so it saw that image) and that made results not yet withdrawn."""
    rejected = session.execute(
        select(Instance.received_at, Instance.rejection_code).where(
            Instance.study_id == study_id, Instance.rejected_at.is_not(None)
        )
    ).all()
    if not rejected:
        return []
    # Any result of its own, not only an SR: an image's objects go before the study's SR is built (issue 22).
    with_results = select(ResultObject.job_id).where(ResultObject.kind != ResultKind.KOS)
    candidates = session.execute(
        select(Job.id, Job.analysis_started_at).where(
            Job.study_id == study_id,
            Job.id < before_job_id,
            Job.state != JobState.RETRACTED,
            Job.id.in_(with_results),
        )
    ).all()
    found = []
    for job_id, started in candidates:
        codes = [code or "" for received, code in rejected if started is not None and started >= received]
        if codes:
            found.append((job_id, codes[0]))
    return found


def rejected_among(session: Session, instance_ids: Sequence[int]) -> bool:
    """Whether any of these instances has been rejected (an analysis checks before it records its results)."""
    found = session.scalar(
        select(Instance.id).where(Instance.id.in_(list(instance_ids)), Instance.rejected_at.is_not(None)).limit(1)
    )
    return found is not None
