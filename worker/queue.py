"""Enqueueing by task name, so the SCP process signals work without importing the worker (or torch)."""

from __future__ import annotations

import logging
from collections.abc import Callable

from celery import Celery

from config.settings import Settings
from db import jobs
from db.engine import SessionFactory
from worker.celery_app import (
    ANALYZE_TASK,
    DELIVER_TASK,
    EARLY_TASK,
    GPU_QUEUE,
    IO_QUEUE,
    STAT_QUEUE,
    create_celery_app,
)

QUEUES = (STAT_QUEUE, GPU_QUEUE, IO_QUEUE)
LANES = {
    STAT_QUEUE: ("urgent lane", "analyses of STAT studies, taken before routine ones"),
    GPU_QUEUE: ("analysis queue", "routine studies waiting for an analysis worker"),
    IO_QUEUE: ("delivery queue", "result objects and messages waiting to be sent"),
}
"""Each broker queue named for what waits in it, and a line saying so (the dashboard's tiles, ``cxr status``)."""

logger = logging.getLogger(__name__)


def stat_lookup(session_factory: SessionFactory) -> Callable[[int], bool]:
    """Whether a job takes the STAT lane, asked of the database (the record) at each enqueue."""

    def is_stat(job_id: int) -> bool:
        with session_factory() as session:
            return jobs.job_is_stat(session, job_id)

    return is_stat


class TaskQueue:
    def __init__(self, app: Celery, is_stat: Callable[[int], bool] | None = None) -> None:
        self._app = app
        self._is_stat = is_stat

    def enqueue_analysis(self, job_id: int) -> None:
        """STAT studies' jobs go to the ``stat`` queue, which analysis workers drain first."""
        urgent = self._is_stat is not None and self._is_stat(job_id)
        self._app.send_task(ANALYZE_TASK, args=[job_id], queue=STAT_QUEUE if urgent else GPU_QUEUE)

    def enqueue_early_analysis(self, study_id: int) -> None:
        """A study an image was stored into: an analysis worker may analyse it before the study completes."""
        self._app.send_task(EARLY_TASK, args=[study_id], queue=GPU_QUEUE)

    def enqueue_delivery(self, delivery_id: int, countdown_s: float | None = None) -> None:
        self._app.send_task(DELIVER_TASK, args=[delivery_id], queue=IO_QUEUE, countdown=countdown_s)

    def depths(self) -> dict[str, int | None]:
        """Messages waiting in each queue; None for a queue the broker cannot tell about right now."""
        depths: dict[str, int | None] = {}
        try:
            with self._app.connection_for_read() as connection:
                connection.ensure_connection(max_retries=1)
                channel = connection.default_channel
                for name in QUEUES:
                    declared = channel.queue_declare(queue=name, passive=True)  # type: ignore[attr-defined]
                    depths[name] = int(declared.message_count)
        except Exception as exc:  # broker down, or a queue not declared yet
            logger.warning("queue depths unavailable: %s", type(exc).__name__)
        return {name: depths.get(name) for name in QUEUES}


def task_queue(settings: Settings, session_factory: SessionFactory) -> TaskQueue:
    """The queue every process enqueues through: STAT studies' jobs take the ``stat`` lane."""
    return TaskQueue(create_celery_app(settings), stat_lookup(session_factory))
