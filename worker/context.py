"""What a worker process holds for its whole life: settings, database sessions, the queue and the warm detector."""

from __future__ import annotations

from dataclasses import dataclass

from db.engine import SessionFactory, make_engine, make_session_factory
from db.settings import Settings
from models.protocol import Detector, DetectorOptions
from models.registry import load_detector
from worker.celery_app import create_celery_app
from worker.queue import TaskQueue, stat_lookup


@dataclass
class WorkerContext:
    settings: Settings
    session_factory: SessionFactory
    queue: TaskQueue

    def detector(self, name: str) -> Detector:
        """Loaded once per process by the registry, then reused."""
        return load_detector(name, detector_options(self.settings))


def detector_options(settings: Settings) -> DetectorOptions:
    """What the model registry needs from the settings."""
    return DetectorOptions(weights_dir=settings.weights_dir, device=settings.worker.device,
                           thresholds=dict(settings.model.thresholds))


_current: WorkerContext | None = None


def build_context(settings: Settings) -> WorkerContext:
    sessions = make_session_factory(make_engine(settings.database_url))
    return WorkerContext(settings=settings, session_factory=sessions, queue=task_queue(settings, sessions))


def task_queue(settings: Settings, session_factory: SessionFactory) -> TaskQueue:
    """The queue every process enqueues through: STAT studies' jobs take the ``stat`` lane."""
    return TaskQueue(create_celery_app(settings), stat_lookup(session_factory))


def install(context: WorkerContext) -> None:
    """Called once by the worker entry point before it consumes messages."""
    global _current
    _current = context


def current() -> WorkerContext:
    if _current is None:
        raise RuntimeError("worker context not installed; start workers with 'cxr worker'")
    return _current
