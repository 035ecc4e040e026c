"""Every DICOM socket the node opens or accepts sends at once (TCP_NODELAY).

DIMSE is request and response: with Nagle's algorithm on, the last small segment of a message waits for the peer's
delayed ACK, which costs about 40-90 ms per C-STORE or C-ECHO whatever the object's size."""

from __future__ import annotations

import socket

from pynetdicom.events import Event


def send_at_once(event: Event) -> None:
    """EVT_CONN_OPEN handler, for an association we request and for one we accept."""
    sock = event.assoc.dul.socket
    raw = sock.socket if sock is not None else None
    if raw is not None and raw.family in (socket.AF_INET, socket.AF_INET6):
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
