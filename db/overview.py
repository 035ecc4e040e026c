"""The queue overview: the one query behind ``cxr status`` and the dashboard's first panel."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from db.deliveries import WAITING_DELIVERY_STATES, deliveries_by_state
from db.jobs import job_counts_by_state
from db.models import DeliveryState, Job, JobState


@dataclass(frozen=True)
class QueueOverview:
    jobs_by_state: dict[JobState, int]
    pending_deliveries: int
    dead_letter_deliveries: int
    oldest_waiting_job: int | None
    oldest_waiting_since: datetime | None


def queue_overview(session: Session) -> QueueOverview:
    """Jobs per state, deliveries waiting and dead-lettered, and the job that has waited longest for a worker."""
    oldest = session.execute(
        select(Job.id, Job.created_at).where(Job.state == JobState.QUEUED).order_by(Job.created_at, Job.id).limit(1)
    ).first()
    by_state = deliveries_by_state(session)
    return QueueOverview(
        jobs_by_state=job_counts_by_state(session),
        pending_deliveries=sum(by_state.get(s, 0) for s in WAITING_DELIVERY_STATES),
        dead_letter_deliveries=by_state.get(DeliveryState.DEAD_LETTER, 0),
        oldest_waiting_job=oldest[0] if oldest else None,
        oldest_waiting_since=oldest[1] if oldest else None,
    )
