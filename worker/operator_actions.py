"""Operator actions, as plain functions the CLI and the dashboard call. Each writes its audit row in the same
transaction as its change, so an action is never applied unaudited nor audited unapplied."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta

from sqlalchemy.orm import Session

from config.settings import Settings
from db import audit, deliveries, destinations, jobs, results, retention, studies
from db.engine import SessionFactory
from db.lifecycle import REQUEUEABLE
from db.models import AuditKind, DeliveryState, JobState, ResultKind, Urgency, utcnow
from worker.delivery_plan import plan_deliveries

logger = logging.getLogger(__name__)

RESENDABLE = frozenset({DeliveryState.DEAD_LETTER, DeliveryState.PENDING})


class NotAllowedError(ValueError):
    """The action does not apply to the object in its current state."""


def _audit(session: Session, actor: str | None, detail: str) -> None:
    audit.record_audit(session, AuditKind.OPERATOR_ACTION, None, None, detail, actor=actor)


def requeue_job(
    session_factory: SessionFactory,
    enqueue: Callable[[int], None],
    job_id: int,
    queue_lease_s: float = 300.0,
    actor: str | None = None,
) -> None:
    """Analyse a job again: same result UIDs, and only objects not yet delivered are sent (dead letters included)."""
    with session_factory.begin() as session:
        state = jobs.job_state(session, job_id)
        if state not in REQUEUEABLE:
            raise NotAllowedError(f"job {job_id} is {state.value}; wait until it finishes")
        if retention.study_purged(session, jobs.job_summary(session, job_id).study_id):
            raise NotAllowedError(f"job {job_id}: retention removed the study's images; it cannot be analysed again")
        lease = utcnow() + timedelta(seconds=queue_lease_s)
        jobs.transition_job(
            session, job_id, JobState.QUEUED, f"requeued by {actor or 'operator'}", lease_expires_at=lease
        )
        jobs.reset_attempts(session, job_id)
        _audit(session, actor, f"requeue job {job_id} (was {state.value})")
    enqueue(job_id)
    logger.info("job %d requeued", job_id)


def cancel_job(session_factory: SessionFactory, job_id: int, actor: str | None = None) -> None:
    """A job still waiting for a worker is not analysed; a worker that picks up its message does nothing."""
    with session_factory.begin() as session:
        state = jobs.job_state(session, job_id)
        if state is not JobState.QUEUED:
            raise NotAllowedError(f"job {job_id} is {state.value}; only a waiting job can be cancelled")
        jobs.transition_job(session, job_id, JobState.CANCELLED, reason=f"cancelled by {actor or 'operator'}")
        _audit(session, actor, f"cancel job {job_id}")
    logger.info("job %d cancelled", job_id)


def resend_delivery(
    session_factory: SessionFactory, enqueue: Callable[[int], None], delivery_id: int, actor: str | None = None
) -> None:
    """Send one result object to its destination again. Attempts keep counting (they feed /metrics), so a re-send
    that fails again is dead-lettered again at once rather than retried for hours."""
    with session_factory.begin() as session:
        work = deliveries.delivery_work(session, delivery_id)
        if work.state not in RESENDABLE:
            raise NotAllowedError(f"delivery {delivery_id} is {work.state.value}; nothing to re-send")
        if work.purged:
            raise NotAllowedError(f"delivery {delivery_id}: retention removed its result file; requeue the job instead")
        deliveries.set_delivery_state(session, delivery_id, DeliveryState.PENDING)
        if jobs.job_state(session, work.job_id) is JobState.DEAD_LETTER:
            # The job waits for its deliveries again; the last one sent makes it DELIVERED.
            jobs.transition_job(session, work.job_id, JobState.ENCODED, f"delivery {delivery_id} re-sent")
        _audit(session, actor, f"re-send delivery {delivery_id} to {work.destination_name}")
    enqueue(delivery_id)
    logger.info("delivery %d re-sent", delivery_id)


def set_destination_paused(
    session_factory: SessionFactory,
    enqueue: Callable[[int], None],
    destination: str,
    paused: bool,
    actor: str | None = None,
) -> int:
    """Pause or resume sending to one destination; a resume sends what waited. Returns the deliveries sent."""
    with session_factory.begin() as session:
        destinations.set_paused(session, destination, paused, actor)
        waiting = [] if paused else destinations.waiting_deliveries(session, destination)
        _audit(session, actor, f"{'pause' if paused else 'resume'} destination {destination}")
    for delivery_id in waiting:
        enqueue(delivery_id)
    logger.info("destination %s %s; %d deliveries sent", destination, "paused" if paused else "resumed", len(waiting))
    return len(waiting)


def release_job(
    settings: Settings,
    session_factory: SessionFactory,
    enqueue: Callable[[int], None],
    job_id: int,
    actor: str | None = None,
) -> int:
    """Send a shadow result to the destinations it was withheld from (once); returns the deliveries planned."""
    with session_factory.begin() as session:
        if not jobs.release_shadow(session, job_id, actor):
            raise NotAllowedError(f"job {job_id} is not a shadow result waiting for release")
        job = jobs.get_job(session, job_id)
        own = [(r.kind, r.id) for r in results.job_result_rows(session, job_id) if r.kind is not ResultKind.KOS]
        urgency = job.urgency or Urgency.NOT_PERFORMED
        planned = plan_deliveries(settings, session, own, urgency, studies.job_senders(session, job_id), live=None)
        if planned and job.state is JobState.COMPLETED:
            jobs.transition_job(session, job_id, JobState.ENCODED, "shadow result released")
        _audit(session, actor, f"release shadow result of job {job_id}")
    for delivery_id in planned or []:
        enqueue(delivery_id)
    logger.info("job %d released from shadow: %d deliveries", job_id, len(planned or []))
    return len(planned or [])
