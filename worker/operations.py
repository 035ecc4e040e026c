"""Operator actions, as plain functions the CLI (and later the dashboard) call."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta

from db import repository
from db.engine import SessionFactory
from db.models import JobState, utcnow

logger = logging.getLogger(__name__)

REQUEUEABLE = frozenset({JobState.FAILED, JobState.DEAD_LETTER, JobState.DELIVERED, JobState.COMPLETED,
                         JobState.NOT_ELIGIBLE, JobState.QUEUED})


class NotRequeueableError(ValueError):
    pass


def requeue_job(
    session_factory: SessionFactory, enqueue: Callable[[int], None], job_id: int, queue_lease_s: float = 300.0
) -> None:
    """Analyse a job again: same result UIDs, and only objects not yet delivered are sent (dead letters included)."""
    with session_factory.begin() as session:
        state = repository.job_state(session, job_id)
        if state not in REQUEUEABLE:
            raise NotRequeueableError(f"job {job_id} is {state.value}; wait until it finishes")
        lease = utcnow() + timedelta(seconds=queue_lease_s)
        repository.transition_job(session, job_id, JobState.QUEUED, "requeued by operator", lease_expires_at=lease)
        repository.reset_attempts(session, job_id)
    enqueue(job_id)
    logger.info("job %d requeued", job_id)
