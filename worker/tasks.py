"""Thin Celery tasks: each takes an id, calls a plain pipeline function, and enqueues what comes next."""

from __future__ import annotations

import logging
from typing import Any

from celery import Task, shared_task

from db import deliveries
from worker.analyze import analyze_batch
from worker.celery_app import ANALYZE_TASK, DELIVER_TASK
from worker.context import current
from worker.deliver import DeliveryOutcome, deliver_result

logger = logging.getLogger(__name__)


@shared_task(name=ANALYZE_TASK, bind=True, acks_late=True, reject_on_worker_lost=True)
def analyze_study(self: Task[Any, Any], job_id: int) -> None:
    context = current()
    for outcome in analyze_batch(context, job_id):  # this job, and any that dynamic batching took with it
        for delivery_id in outcome.delivery_ids:
            context.queue.enqueue_delivery(delivery_id)


@shared_task(name=DELIVER_TASK, bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=None)
def deliver(self: Task[Any, Any], delivery_id: int) -> None:
    context = current()
    outcome = deliver_result(context, delivery_id)
    if outcome is DeliveryOutcome.RETRY:
        # The attempt count and the retry's due time live in the database, which also decides when to stop.
        with context.session_factory() as session:
            countdown = deliveries.retry_due_in(session, delivery_id)
        raise self.retry(countdown=countdown)
