"""Dynamic batching: an analysis worker fills one detector pass with images from other queued jobs.

The database is the queue's record, so the worker asks it for QUEUED jobs for the same detector (STAT first) and
starts each under its own lease and attempt, exactly as if its message had arrived; when that message does arrive,
the job is running or done and the message does nothing. Gathering stops at ``batch_max_images`` images or after
``batch_wait_ms``. Only first attempts share a pass: a study that crashes its worker costs the jobs batched with it
one attempt, and on its retries it runs alone, so it cannot dead-letter them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

from config.settings import WorkerSettings
from db import leases
from db.engine import SessionFactory

logger = logging.getLogger(__name__)

POLL_S = 0.005
Work = TypeVar("Work")


def gather(
    session_factory: SessionFactory,
    settings: WorkerSettings,
    detector: str,
    first_job: int,
    first_images: int,
    start: Callable[[int], Work | None],
    images_of: Callable[[Work], int],
) -> list[Work]:
    """Jobs started to share the first job's detector pass; ``start`` returns None for a job it could not take."""
    budget = settings.batch_max_images - first_images
    deadline = time.monotonic() + settings.batch_wait_ms / 1000
    taken: list[Work] = []
    tried = {first_job}
    while budget > 0:
        with session_factory() as session:
            candidates = leases.queued_jobs(session, detector, budget, tried)
        for job_id in candidates:
            tried.add(job_id)
            work = start(job_id)
            if work is not None:
                taken.append(work)
                budget -= max(1, images_of(work))
            if budget <= 0:
                break
        remaining = deadline - time.monotonic()
        if budget <= 0 or remaining <= 0:
            break
        time.sleep(min(POLL_S, remaining))
    if taken:
        logger.info("job %d batched with %d queued jobs", first_job, len(taken))
    return taken
