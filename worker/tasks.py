"""Thin Celery tasks: each takes an id, calls a plain pipeline function, and enqueues what comes next."""

from __future__ import annotations

import logging
from typing import Any

from celery import Task, shared_task

from db import conversations
from worker.analyze import analyze_batch
from worker.announce import Announcer
from worker.celery_app import ANALYZE_TASK, DELIVER_TASK, EARLY_TASK
from worker.context import current
from worker.deliver import DeliveryOutcome, deliver_conversation
from worker.early_analysis import analyse_early

logger = logging.getLogger(__name__)


@shared_task(name=ANALYZE_TASK, bind=True, acks_late=True, reject_on_worker_lost=True)
def analyze_study(self: Task[Any, Any], job_id: int) -> None:
    context = current()
    announce = Announcer(context.session_factory, context.queue.enqueue_delivery)
    outcomes = analyze_batch(context, job_id, announce)  # this job, and any that dynamic batching took with it
    announce([d for o in outcomes for d in o.delivery_ids])


@shared_task(name=EARLY_TASK, acks_late=False)
def analyse_early_task(study_id: int) -> None:
    """Best effort: a lost message or a crash costs only the time it would have saved (the job analyses anyway)."""
    analyse_early(current(), study_id)


@shared_task(name=DELIVER_TASK, bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=None)
def deliver(self: Task[Any, Any], delivery_id: int) -> None:
    context = current()
    outcome = deliver_conversation(context, delivery_id)
    if outcome is DeliveryOutcome.RETRY:
        # The attempt count and the retry's due time live in the database, which also decides when to stop.
        with context.session_factory() as session:
            countdown = conversations.conversation_retry_due_in(session, delivery_id)
        raise self.retry(countdown=countdown)
