"""What an admin checks first when studies stop arriving or the disk fills: whether the node's own SCP accepts
connections, when the last instance and the last new study came in (and from which AE title), and the data
directory's spool, results and free space, with a warning below ``dashboard.free_space_warning_gb``."""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from ipaddress import IPv4Network, IPv6Network, ip_address
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from config.settings import Settings
from db.models import Instance, Study, utcnow

STORAGE_CACHE_S = 60.0
"""Walking the spool costs a stat per file: at most once a minute, never once per page."""
GIGABYTE = 1024**3


LISTENER_TIMEOUT_S = 1.0


@dataclass(frozen=True)
class ListenerStatus:
    address: str
    accepting: bool | None
    """Its port accepts a TCP connection (None: not checked from here). Not a C-ECHO: an association would be audited
    and counted on every page view, and the SCP's allow-list may refuse the dashboard's AE title."""
    detail: str
    last_instance_at: datetime | None
    last_calling_ae: str | None
    last_study_at: datetime | None


@dataclass(frozen=True)
class StorageStatus:
    data_dir: str
    spool_bytes: int
    """The received images, without the early-analysis entries beside them."""
    early_analysis_bytes: int
    """Findings and pixels analysed before their study completed (``worker.shared_findings``): bounded by
    ``worker.early_analysis_mb``, and gone when their jobs take them, so not images waiting."""
    results_bytes: int
    free_bytes: int
    total_bytes: int
    warning: bool
    measured_at: datetime


def _accepting(host: str, port: int, allowed: list[IPv4Network | IPv6Network]) -> tuple[bool | None, str]:
    host = "127.0.0.1" if host in ("", "0.0.0.0") else ("::1" if host == "::" else host)
    try:
        address = ip_address(host)
    except ValueError:
        address = None
    if allowed and (address is None or not any(address in network for network in allowed)):
        # The SCP would refuse, and audit, a connection from here on every page view.
        return None, "not checked: scp.allowed_networks does not include this host"
    try:
        with socket.create_connection((host, port), timeout=LISTENER_TIMEOUT_S):
            return True, "accepting connections"
    except OSError as exc:
        return False, f"not accepting connections ({exc.strerror or type(exc).__name__})"


def listener_status(session: Session, settings: Settings) -> ListenerStatus:
    last = session.execute(
        select(Instance.received_at, Instance.calling_ae_title).order_by(Instance.id.desc()).limit(1)
    ).one_or_none()
    last_study = session.scalar(select(func.max(Study.first_received_at)))
    accepting, detail = _accepting(settings.scp.host, settings.scp.port, list(settings.scp.allowed_networks))
    return ListenerStatus(
        address=f"{settings.scp.ae_title} on {settings.scp.host}:{settings.scp.port}",
        accepting=accepting,
        detail=detail,
        last_instance_at=last[0] if last else None,
        last_calling_ae=last[1] if last else None,
        last_study_at=last_study,
    )


def folder_bytes(folder: Path, leave_out: Path | None = None) -> int:
    """The bytes of the files under ``folder``, without those under ``leave_out``."""
    total = 0
    for root, folders, files in os.walk(folder):
        folders[:] = [name for name in folders if leave_out is None or Path(root, name) != leave_out]
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                continue  # removed while we walked
    return total


@dataclass
class StorageGauge:
    settings: Settings
    _value: StorageStatus | None = None
    _at: float = float("-inf")
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def get(self) -> StorageStatus:
        with self._lock:
            if self._value is None or time.monotonic() - self._at > STORAGE_CACHE_S:
                self._value, self._at = self._measure(), time.monotonic()
            return self._value

    def _measure(self) -> StorageStatus:
        data_dir = self.settings.data_dir
        usage = shutil.disk_usage(data_dir if data_dir.exists() else data_dir.parent)
        threshold = self.settings.dashboard.free_space_warning_gb * GIGABYTE
        return StorageStatus(
            data_dir=str(data_dir),
            spool_bytes=folder_bytes(self.settings.spool_dir, leave_out=self.settings.early_analysis_dir),
            early_analysis_bytes=folder_bytes(self.settings.early_analysis_dir),
            results_bytes=folder_bytes(self.settings.results_dir),
            free_bytes=usage.free,
            total_bytes=usage.total,
            warning=usage.free < threshold,
            measured_at=utcnow(),
        )
