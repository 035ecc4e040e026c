"""Audit messages to the site's collector over syslog: RFC 5424 messages, octet-counted over TCP or TLS (RFC 6587,
RFC 5425), or one per UDP datagram (RFC 5426).

Emitting never blocks the caller: messages wait in a bounded queue that a background thread drains, reconnecting with
backoff while the collector is away. The database audit trail stays the record; if the queue fills while the collector
is away, the newest messages are dropped and counted, and the drop is logged.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import socket
import ssl
import threading
from datetime import UTC, datetime

from atna.messages import AuditMessage, AuditSource, to_xml
from config.records import AtnaSettings

logger = logging.getLogger(__name__)

FACILITY_AUTHPRIV = 10
SEVERITY_NOTICE = 5
MSGID = "IHE+RFC-3881"  # what IHE ATNA names the DICOM audit message in the syslog header
BOM = b"\xef\xbb\xbf"  # RFC 5424 6.4: a UTF-8 MSG starts with the byte order mark


def syslog_frame(xml: bytes, app_name: str, hostname: str | None = None, at: datetime | None = None) -> bytes:
    """One RFC 5424 message: header, no structured data, the XML as MSG."""
    stamp = (at or datetime.now(UTC)).astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    host = (hostname or socket.gethostname() or "-")[:255]
    header = f"<{FACILITY_AUTHPRIV * 8 + SEVERITY_NOTICE}>1 {stamp} {host} {app_name[:48]} {os.getpid()} {MSGID} - "
    return header.encode("ascii", "replace") + BOM + xml


class SyslogSender:
    """Sends audit messages to ``settings``' collector from a background thread; ``close`` flushes what it can."""

    def __init__(self, settings: AtnaSettings, source: AuditSource, app_name: str) -> None:
        self._settings = settings
        self._source = source
        self._app_name = app_name
        self._queue: queue.Queue[bytes | None] = queue.Queue(maxsize=settings.queue_size)
        self._socket: socket.socket | None = None
        self._stop = threading.Event()
        self.dropped = 0
        self.sent = 0
        self._thread = threading.Thread(target=self._run, name="atna-syslog", daemon=True)
        self._thread.start()

    def emit(self, message: AuditMessage) -> None:
        frame = syslog_frame(to_xml(message, self._source), self._app_name)
        try:
            self._queue.put_nowait(frame)
        except queue.Full:
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 1000 == 0:
                logger.error("audit: %d messages dropped: the collector has been away too long", self.dropped)

    def close(self, timeout_s: float = 5.0) -> None:
        """Send what is queued (for at most ``timeout_s``), then stop."""
        self._stop.set()
        with contextlib.suppress(queue.Full):  # the thread stops on its own once it sees the stop flag
            self._queue.put(None, timeout=timeout_s)
        self._thread.join(timeout_s)
        self._disconnect()

    def _run(self) -> None:
        backoff = 1.0
        frame: bytes | None = None
        while True:
            if frame is None:
                frame = self._queue.get()
                if frame is None:
                    return
            try:
                self._send(frame)
            except OSError as exc:
                self._disconnect()
                if self._stop.is_set():
                    logger.error("audit: stopped with messages unsent: %s", exc.strerror or type(exc).__name__)
                    return
                logger.warning("audit collector unreachable (%s); retrying in %.0f s", type(exc).__name__, backoff)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 30.0)
                continue
            self.sent += 1
            frame, backoff = None, 1.0

    def _send(self, frame: bytes) -> None:
        settings = self._settings
        address = (settings.host or "", settings.port)
        if settings.transport == "udp":
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as datagram:
                datagram.sendto(frame, address)
            return
        if self._socket is None:
            self._socket = self._connect(address)
        self._socket.sendall(f"{len(frame)} ".encode("ascii") + frame)

    def _connect(self, address: tuple[str, int]) -> socket.socket:
        raw = socket.create_connection(address, timeout=10)
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self._settings.transport != "tls":
            return raw
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=self._settings.ca_file)
        if self._settings.cert_file is not None:
            context.load_cert_chain(self._settings.cert_file, self._settings.key_file)
        return context.wrap_socket(raw, server_hostname=address[0])

    def _disconnect(self) -> None:
        if self._socket is not None:
            try:
                self._socket.close()
            finally:
                self._socket = None


def make_sender(settings: AtnaSettings, default_source_id: str, app_name: str) -> SyslogSender | None:
    """A sender when ``[atna] host`` is set; None (the node audits to its database only) otherwise."""
    if not settings.host:
        return None
    source = AuditSource(settings.source_id or default_source_id, settings.enterprise_site_id)
    return SyslogSender(settings, source, app_name)
