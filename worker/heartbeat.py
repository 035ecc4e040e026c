"""Each worker process keeps a row in the database saying it is alive, where it runs and which model it serves.

The dashboard lists workers from these rows rather than from Celery's broadcast inspect: the embedded SQLite broker
has no fanout, and the rows work the same across hosts and brokers.
"""

from __future__ import annotations

import logging
import threading

from sqlalchemy.exc import SQLAlchemyError

from db import heartbeats
from db.engine import SessionFactory
from db.errors import describe_database_error
from db.heartbeats import WorkerRecord
from db.models import utcnow

logger = logging.getLogger(__name__)

BEAT_INTERVAL_S = 15.0
ONLINE_WITHIN_S = 3 * BEAT_INTERVAL_S


class Heartbeat:
    def __init__(self, session_factory: SessionFactory, record: WorkerRecord, interval_s: float = BEAT_INTERVAL_S):
        self._session_factory = session_factory
        self._record = record
        self._interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="heartbeat", daemon=True)

    @staticmethod
    def record_for(queues: str, device: str, detector: str, detector_version: str, identity: str) -> WorkerRecord:
        """``identity`` is ``WorkerSettings.identity()``: the node name (or host name) and the process id."""
        now = utcnow()
        hostname = f"{queues.replace(',', '-')}@{identity}"
        return WorkerRecord(hostname, queues, device, detector, detector_version, now, now)

    def beat_once(self) -> None:
        record = WorkerRecord(**{**self._record.__dict__, "seen_at": utcnow()})
        try:
            with self._session_factory.begin() as session:
                heartbeats.beat(session, record)
        except SQLAlchemyError as exc:
            logger.warning("heartbeat not recorded: %s", describe_database_error(exc))

    def _run(self) -> None:
        while True:
            self.beat_once()
            if self._stop.wait(self._interval_s):
                return

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        try:
            with self._session_factory.begin() as session:
                heartbeats.forget_worker(session, self._record.hostname)
        except SQLAlchemyError as exc:
            logger.warning("heartbeat row not removed: %s", describe_database_error(exc))
