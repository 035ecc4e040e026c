"""Destinations' health: each configured destination is C-ECHOed in the background, and pages read the latest outcome
without waiting on the network."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import datetime

from config.outputs import Destination
from db.models import utcnow
from dicom_node.scu import echo

logger = logging.getLogger(__name__)


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
        self._health = {
            d.name: DestinationHealth(d.name, d.ae_title, f"{d.host}:{d.port}", None, None, None) for d in destinations
        }
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="destination-echo", daemon=True)

    def check_all(self) -> None:
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
