"""The sweeper: the database, not the broker, decides what is still to do.

A QUEUED job whose lease ran out lost its message (broker restart, dead worker); an ANALYZING one lost its worker. Both
are sent again, until the job has used its attempts: then it is dead-lettered with the reason, so a poison study cannot
hold a worker forever. A PENDING delivery nobody touched for longer than the longest backoff is sent again too.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from config.settings import WorkerSettings
from db import conversations, jobs, leases
from db.engine import SessionFactory
from db.errors import describe_database_error
from db.models import JobState, utcnow

logger = logging.getLogger(__name__)


@dataclass
class SweepReport:
    requeued_jobs: list[int] = field(default_factory=list)
    dead_lettered_jobs: list[int] = field(default_factory=list)
    resent_deliveries: list[int] = field(default_factory=list)


def sweep(
    session_factory: SessionFactory,
    settings: WorkerSettings,
    enqueue_job: Callable[[int], None],
    enqueue_delivery: Callable[[int], None],
    now: datetime | None = None,
) -> SweepReport:
    now = now or utcnow()
    report = SweepReport()
    with session_factory.begin() as session:
        for job in leases.expired_jobs(session, now):
            if job.attempts >= settings.max_attempts:
                reason = f"gave up after {job.attempts} attempts: no result before the lease ran out"
                jobs.transition_job(session, job.job_id, JobState.DEAD_LETTER, reason=reason)
                report.dead_lettered_jobs.append(job.job_id)
                continue
            lease = now + timedelta(seconds=settings.queue_lease_s)
            detail = f"sent again by the sweeper: lease expired while {job.state.value}"
            jobs.transition_job(session, job.job_id, JobState.QUEUED, detail, lease_expires_at=lease)
            report.requeued_jobs.append(job.job_id)
        untouched_since = now - timedelta(seconds=settings.delivery_lease_s)
        never_tried_since = now - timedelta(seconds=settings.queue_lease_s)
        report.resent_deliveries = leases.stale_deliveries(session, untouched_since, never_tried_since)
        leaders = conversations.conversation_leaders(session, report.resent_deliveries)  # companions go with them
    # Messages go out only after the new leases are committed, so a crash here leaves work the next sweep finds.
    for job_id in report.requeued_jobs:
        enqueue_job(job_id)
    for delivery_id in leaders:
        enqueue_delivery(delivery_id)
    if report.requeued_jobs or report.dead_lettered_jobs or report.resent_deliveries:
        logger.warning(
            "sweeper: %d jobs sent again, %d dead-lettered, %d deliveries sent again",
            len(report.requeued_jobs),
            len(report.dead_lettered_jobs),
            len(report.resent_deliveries),
        )
    return report


def run(
    stop: threading.Event,
    session_factory: SessionFactory,
    settings: WorkerSettings,
    enqueue_job: Callable[[int], None],
    enqueue_delivery: Callable[[int], None],
    housekeeping: Callable[[], object] | None = None,
) -> None:
    """Sweep every interval; ``housekeeping`` (retention) runs after each sweep."""
    while not stop.wait(settings.sweep_interval_s):
        try:
            sweep(session_factory, settings, enqueue_job, enqueue_delivery)
            if housekeeping is not None:
                housekeeping()
        except Exception as exc:  # database or broker briefly away (kombu raises its own types): the next pass retries
            logger.error("sweep failed, retrying: %s", describe_database_error(exc))
