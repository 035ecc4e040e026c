"""What the dashboard process holds: database sessions, the queue, caches of slow facts, and the upload path.

Slow facts (broker queue depths, destinations' C-ECHO) are gathered off the request path and cached, so a page never
waits on the network.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from db.engine import SessionFactory
from db.settings import Destination, Settings
from dicom_node.completion import CompletionMonitor
from dicom_node.handlers import NodeContext
from dicom_node.scu import echo
from dicom_node.spool import Spool
from models.protocol import Detector
from models.registry import load_detector
from worker.context import detector_options
from worker.dashboard.auth import Authenticator
from worker.queue import TaskQueue

logger = logging.getLogger(__name__)

DEPTH_CACHE_S = 5.0


@dataclass(frozen=True)
class DestinationHealth:
    name: str
    ae_title: str
    address: str
    echo_ok: bool | None
    """None until the first C-ECHO has been tried."""
    checked_at: datetime | None
    detail: str | None
    paused: bool = False
    """Set by the overview from the database; the monitor itself only echoes."""


class DestinationMonitor:
    """C-ECHOes every destination in the background; the dashboard reads the latest outcome."""

    def __init__(self, destinations: list[Destination], calling_ae: str, interval_s: float) -> None:
        self._destinations = destinations
        self._calling_ae = calling_ae
        self._interval_s = interval_s
        self._health = {d.name: DestinationHealth(d.name, d.ae_title, f"{d.host}:{d.port}", None, None, None)
                        for d in destinations}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="destination-echo", daemon=True)

    def check_all(self) -> None:
        from db.models import utcnow

        for d in self._destinations:
            try:
                status = echo(d, calling_ae=self._calling_ae, timeout_s=5.0)
            except Exception as exc:  # a misconfigured TLS file, say: report it, keep monitoring the rest
                status, detail = None, type(exc).__name__
            else:
                detail = "no association" if status is None else f"status 0x{status:04X}"
            health = DestinationHealth(d.name, d.ae_title, f"{d.host}:{d.port}", status == 0, utcnow(), detail)
            with self._lock:
                self._health[d.name] = health

    def snapshot(self) -> list[DestinationHealth]:
        with self._lock:
            return list(self._health.values())

    def _run(self) -> None:
        while not self._stop.is_set():
            self.check_all()
            self._stop.wait(self._interval_s)

    def start(self) -> None:
        if self._destinations:
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()


@dataclass
class DepthCache:
    """Broker queue depths, asked at most every few seconds."""

    read: Callable[[], dict[str, int | None]]
    _value: dict[str, int | None] = field(default_factory=dict)
    _at: float = float("-inf")
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def get(self) -> dict[str, int | None]:
        with self._lock:
            if time.monotonic() - self._at > DEPTH_CACHE_S:
                self._value, self._at = self.read(), time.monotonic()
            return dict(self._value)


@dataclass
class DashboardServices:
    settings: Settings
    session_factory: SessionFactory
    queue: TaskQueue
    authenticator: Authenticator
    destinations: DestinationMonitor
    depths: DepthCache
    node: NodeContext
    completion: CompletionMonitor

    @classmethod
    def build(cls, settings: Settings, session_factory: SessionFactory, queue: TaskQueue) -> DashboardServices:
        return cls(
            settings=settings,
            session_factory=session_factory,
            queue=queue,
            authenticator=Authenticator.from_settings(settings),
            destinations=DestinationMonitor(settings.destinations, settings.scp.ae_title,
                                            settings.dashboard.echo_interval_s),
            depths=DepthCache(queue.depths),
            node=NodeContext(settings=settings.scp, spool=Spool(settings.spool_dir), session_factory=session_factory),
            # Uploaded studies are complete on arrival; the dashboard turns them into jobs itself.
            completion=CompletionMonitor(session_factory, queue.enqueue_analysis, settings.detector, 1.0,
                                         settings.rules, settings.worker.queue_lease_s),
        )

    def detector(self) -> Detector:
        """The configured detector, loaded on first use (model page, PNG/JPEG upload) and kept."""
        return load_detector(self.settings.detector, detector_options(self.settings))

    def start(self) -> None:
        self.destinations.start()

    def stop(self) -> None:
        self.destinations.stop()
