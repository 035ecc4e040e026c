"""The one Celery app. Messages carry ids only; the database is the record, Celery only signals work."""

from __future__ import annotations

from celery import Celery
from kombu import Queue

from config.settings import Settings
from worker.embedded_broker import broker_connection, ensure_directory

ANALYZE_TASK = "cxr.analyze_study"
DELIVER_TASK = "cxr.deliver"
EARLY_TASK = "cxr.analyse_early"
GPU_QUEUE = "gpu"
STAT_QUEUE = "stat"
"""Urgent analyses. Analysis workers consume it before ``gpu``."""
IO_QUEUE = "io"
VISIBILITY_TIMEOUT_S = 3600.0


def _transport_options(broker_url: str) -> dict[str, float | str]:
    """Redis redelivers an unacknowledged message after the visibility timeout: keep it above the longest job; and it
    polls a worker's queues in the order given (``stat`` first) rather than round robin.

    kombu's SQLAlchemy transport passes every transport option to ``create_engine``, so it gets none: it takes its
    queues in turn, so a STAT job waits for at most one routine job per analysis worker.
    """
    if broker_url.startswith(("redis://", "rediss://")):
        return {"visibility_timeout": VISIBILITY_TIMEOUT_S, "queue_order_strategy": "priority"}
    return {}


def create_celery_app(settings: Settings) -> Celery:
    ensure_directory(settings.broker_url)
    url, transport = broker_connection(settings.broker_url)
    app = Celery("cxr", broker=url, include=["worker.tasks"])
    app.conf.update(
        broker_transport=transport,
        task_serializer="json",
        accept_content=["json"],
        result_backend=None,
        task_ignore_result=True,
        task_queues=[Queue(STAT_QUEUE), Queue(GPU_QUEUE), Queue(IO_QUEUE)],
        task_default_queue=GPU_QUEUE,
        task_routes={
            ANALYZE_TASK: {"queue": GPU_QUEUE},
            EARLY_TASK: {"queue": GPU_QUEUE},
            DELIVER_TASK: {"queue": IO_QUEUE},
        },
        # One message at a time per worker: a long analysis must not hold back messages another worker could take.
        worker_prefetch_multiplier=1,
        # The tasks are idempotent, so a message is acknowledged only after it ran, and re-queued if the worker dies.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_hijack_root_logger=False,
        broker_connection_retry_on_startup=True,
        # Keep a running task when the broker connection drops: its job holds a lease in the database, and a copy
        # redelivered meanwhile would find it ANALYZING and wait for the lease (Celery asks for an explicit choice).
        worker_cancel_long_running_tasks_on_connection_loss=False,
        broker_transport_options=_transport_options(settings.broker_url),
        worker_send_task_events=False,
        enable_utc=True,
    )
    return app
