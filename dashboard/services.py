"""What a dashboard process holds, built once at start: settings, database sessions, the task queue, the login
check, the cached slow facts (``destination_health``, ``queue_depths``) and the ingest path for uploads."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from atna.events import user_authentication
from atna.messages import AuditMessage, Outcome
from atna.syslog import SyslogSender, make_sender
from config.settings import Settings
from dashboard.auth import Authenticator
from dashboard.destination_health import DestinationMonitor
from dashboard.queue_depths import DepthCache
from dashboard.site_status import StorageGauge
from db.engine import SessionFactory
from dicom_node.ingest import NodeContext
from models.protocol import Detector
from models.registry import load_detector
from worker.context import detector_options
from worker.queue import TaskQueue

logger = logging.getLogger(__name__)


@dataclass
class DashboardServices:
    settings: Settings
    session_factory: SessionFactory
    queue: TaskQueue
    authenticator: Authenticator
    destinations: DestinationMonitor
    depths: DepthCache
    node: NodeContext
    atna: SyslogSender | None = None
    """The security audit sender (``[atna]``); None when no collector is configured."""
    storage: StorageGauge | None = None

    @classmethod
    def build(cls, settings: Settings, session_factory: SessionFactory, queue: TaskQueue) -> DashboardServices:
        return cls(
            settings=settings,
            session_factory=session_factory,
            queue=queue,
            authenticator=Authenticator.from_settings(settings),
            destinations=DestinationMonitor(
                settings.destinations, settings.scp.ae_title, settings.dashboard.echo_interval_s
            ),
            depths=DepthCache(queue.depths),
            node=NodeContext.for_uploads(settings, session_factory, queue.enqueue_analysis),
            atna=make_sender(settings.atna, settings.scp.ae_title, "cxr-dashboard"),
            storage=StorageGauge(settings),
        )

    @property
    def application(self) -> str:
        """How audit messages name the dashboard: the node's AE title, then the role."""
        return f"{self.settings.scp.ae_title} dashboard"

    def audit(self, message: AuditMessage) -> None:
        if self.atna is not None:
            self.atna.emit(message)

    def audit_login(self, user: str, client: str | None, outcome: Outcome, why: str | None = None) -> None:
        self.audit(user_authentication(user, client, self.application, login=True, outcome=outcome, why=why))

    def detector(self) -> Detector:
        """The configured detector, loaded on first use (model page, PNG/JPEG upload) and kept."""
        return load_detector(self.settings.detector, detector_options(self.settings))

    def start(self) -> None:
        self.destinations.start()

    def stop(self) -> None:
        self.destinations.stop()
        if self.atna is not None:
            self.atna.close()
