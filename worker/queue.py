"""Enqueueing by task name, so the SCP process signals work without importing the worker (or torch)."""

from __future__ import annotations

import logging

from celery import Celery

from worker.celery_app import ANALYZE_TASK, DELIVER_TASK, GPU_QUEUE, IO_QUEUE

logger = logging.getLogger(__name__)


class TaskQueue:
    def __init__(self, app: Celery) -> None:
        self._app = app

    def enqueue_analysis(self, job_id: int) -> None:
        self._app.send_task(ANALYZE_TASK, args=[job_id], queue=GPU_QUEUE)

    def enqueue_delivery(self, delivery_id: int, countdown_s: float | None = None) -> None:
        self._app.send_task(DELIVER_TASK, args=[delivery_id], queue=IO_QUEUE, countdown=countdown_s)
