"""What a worker process holds for its whole life: settings, database sessions, the queue and the warm detector."""

from __future__ import annotations

from dataclasses import dataclass, field

from atna.syslog import SyslogSender, make_sender
from config.settings import Settings
from db.engine import SessionFactory, make_engine, make_session_factory
from models.protocol import Detector, DetectorOptions
from models.registry import load_detector
from worker.findings_cache import FindingsCache
from worker.queue import TaskQueue, task_queue
from worker.shared_findings import node_findings


@dataclass
class WorkerContext:
    settings: Settings
    session_factory: SessionFactory
    queue: TaskQueue
    atna: SyslogSender | None = None
    """The security audit sender (``[atna]``), for results sent; None when no collector is configured."""
    findings: FindingsCache = field(default_factory=lambda: FindingsCache(0))
    """What early analysis prepared for the jobs to come (``worker.early_analysis``)."""

    def detector(self, name: str) -> Detector:
        """Loaded once per process by the registry, then reused."""
        return load_detector(name, detector_options(self.settings))


def detector_options(settings: Settings) -> DetectorOptions:
    """What the model registry needs from the settings."""
    return DetectorOptions(
        weights_dir=settings.weights_dir,
        device=settings.worker.device,
        thresholds=dict(settings.model.thresholds),
        thresholds_set=settings.model.thresholds_set.isoformat() if settings.model.thresholds_set else None,
    )


_current: WorkerContext | None = None


def build_context(settings: Settings) -> WorkerContext:
    sessions = make_session_factory(make_engine(settings.database_url))
    return WorkerContext(
        settings=settings,
        session_factory=sessions,
        queue=task_queue(settings, sessions),
        atna=make_sender(settings.atna, settings.scp.ae_title, "cxr-worker"),
        findings=findings_cache(settings),
    )


def findings_cache(settings: Settings) -> FindingsCache:
    """This process's early-analysis entries, shared through the spool with the node's other analysis workers."""
    return FindingsCache(settings.worker.early_analysis_mb * 2**20, node_findings(settings))


def install(context: WorkerContext) -> None:
    """Called once by the worker entry point before it consumes messages."""
    global _current
    _current = context


def current() -> WorkerContext:
    if _current is None:
        raise RuntimeError("worker context not installed; start workers with 'cxr worker'")
    return _current
