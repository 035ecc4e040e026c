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

    def depths(self) -> dict[str, int | None]:
        """Messages waiting in each queue; None for a queue the broker cannot tell about right now."""
        depths: dict[str, int | None] = {}
        try:
            with self._app.connection_for_read() as connection:
                connection.ensure_connection(max_retries=1)
                channel = connection.default_channel
                for name in (GPU_QUEUE, IO_QUEUE):
                    declared = channel.queue_declare(queue=name, passive=True)  # type: ignore[attr-defined]
                    depths[name] = int(declared.message_count)
        except Exception as exc:  # broker down, or a queue not declared yet
            logger.warning("queue depths unavailable: %s", type(exc).__name__)
        return {name: depths.get(name) for name in (GPU_QUEUE, IO_QUEUE)}
