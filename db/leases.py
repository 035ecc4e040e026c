"""Repository functions for the sweeper: work whose lease ran out (lost message, dead worker), and stale deliveries."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from db.models import Delivery, DeliveryState, DestinationState, Job, JobState, utcnow
from db.repository import LEASED_STATES


@dataclass(frozen=True)
class ExpiredJob:
    job_id: int
    state: JobState
    attempts: int


def expired_jobs(session: Session, now: datetime) -> list[ExpiredJob]:
    """QUEUED or ANALYZING jobs whose lease is over, locked so that two sweepers cannot both take one."""
    rows = session.scalars(
        select(Job)
        .where(Job.state.in_(LEASED_STATES), Job.lease_expires_at.is_not(None), Job.lease_expires_at < now)
        .order_by(Job.lease_expires_at)
        .with_for_update(skip_locked=True)
    )
    return [ExpiredJob(j.id, j.state, j.attempts) for j in rows]


def stale_deliveries(session: Session, untouched_since: datetime) -> list[int]:
    """Deliveries nothing has touched since ``untouched_since``: PENDING ones whose message was lost, and
    COMMIT_PENDING ones whose commitment report never came (they are stored and asked for again)."""
    waiting = (DeliveryState.PENDING, DeliveryState.COMMIT_PENDING)
    rows = list(
        session.scalars(
            select(Delivery)
            .where(
                Delivery.state.in_(waiting),
                Delivery.updated_at < untouched_since,
                # A paused destination's deliveries wait for the operator's resume, which sends them.
                Delivery.destination_name.not_in(select(DestinationState.name).where(DestinationState.paused.is_(True))),
            )
            .order_by(Delivery.id)
            .with_for_update(skip_locked=True)
        )
    )
    for delivery in rows:
        if delivery.state is DeliveryState.COMMIT_PENDING:
            delivery.last_error = "no storage commitment report in time"
        delivery.state = DeliveryState.PENDING
        delivery.updated_at = utcnow()
    return [d.id for d in rows]
