"""Repository functions for leases: work whose lease ran out (lost message, dead worker), stale deliveries, and queued
jobs an analysis worker may take into its batch."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from db.deliveries import WAITING_DELIVERY_STATES
from db.lifecycle import LEASED_STATES
from db.models import Delivery, DeliveryState, DestinationState, Job, JobState, Study, utcnow


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


def stale_deliveries(session: Session, untouched_since: datetime, never_tried_since: datetime) -> list[int]:
    """Deliveries nothing has touched since ``untouched_since``: PENDING ones whose message was lost, and
    COMMIT_PENDING ones whose commitment report never came (they are stored and asked for again). A delivery never
    tried is stale sooner, from ``never_tried_since``: no backoff can be holding it, so its first message was lost
    (a broker down when the analysis finished)."""
    rows = list(
        session.scalars(
            select(Delivery)
            .where(
                Delivery.state.in_(WAITING_DELIVERY_STATES),
                or_(
                    Delivery.updated_at < untouched_since,
                    and_(
                        Delivery.attempts == 0,
                        Delivery.state == DeliveryState.PENDING,
                        Delivery.updated_at < never_tried_since,
                    ),
                ),
                # A paused destination's deliveries wait for the operator's resume, which sends them.
                Delivery.destination_name.not_in(
                    select(DestinationState.name).where(DestinationState.paused.is_(True))
                ),
            )
            .order_by(Delivery.id)
            .with_for_update(skip_locked=True)
        )
    )
    for delivery in rows:
        if delivery.state is DeliveryState.COMMIT_PENDING:
            delivery.last_error = "no storage commitment report in time"
        delivery.state = DeliveryState.PENDING
        delivery.retry_at = None
        delivery.updated_at = utcnow()
    return [d.id for d in rows]


def queued_jobs(session: Session, detector: str, limit: int, exclude: set[int]) -> list[int]:
    """Up to ``limit`` QUEUED jobs for ``detector`` never attempted, STAT first, then oldest: companions for a batch.
    Their messages are still on their way; whoever takes the job first runs it, and the message finds it started or
    done. A job already attempted may be the one that crashes its worker, so it is left to run alone."""
    query = (
        select(Job.id)
        .join(Study, Study.id == Job.study_id)
        .where(Job.state == JobState.QUEUED, Job.detector == detector, Job.attempts == 0)
        .order_by(Study.stat.desc(), Job.id)
        .limit(limit + len(exclude))
    )
    return [job_id for job_id in session.scalars(query) if job_id not in exclude][:limit]
