"""How the node's DICOM sockets send and receive.

Every socket the node opens or accepts sends at once (TCP_NODELAY): DIMSE is request and response, and with Nagle's
algorithm on, the last small segment of a message waits for the peer's delayed ACK, which costs about 40-90 ms per
C-STORE or C-ECHO whatever the object's size.

An accepted association reads each PDU into one buffer the size its header states, in as few calls as the kernel
allows: pynetdicom reads 4 KiB at a time and appends, 256 calls and copies for each 1 MiB PDU
(``bench/pdu_receive.py``)."""

from __future__ import annotations

import socket

from pynetdicom.events import Event
from pynetdicom.transport import AssociationSocket


def send_at_once(event: Event) -> None:
    """EVT_CONN_OPEN handler, for an association we request and for one we accept."""
    sock = event.assoc.dul.socket
    raw = sock.socket if sock is not None else None
    if raw is not None and raw.family in (socket.AF_INET, socket.AF_INET6):
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def receive_whole(sock: AssociationSocket, nr_bytes: int) -> bytearray:
    """``AssociationSocket.recv`` in one buffer: ``nr_bytes`` read, or fewer when the peer closed the connection (as
    pynetdicom's, which its reader turns into Evt17). A timeout or a reset raises ``OSError``, as there."""
    raw = sock.socket
    if raw is None:
        return bytearray()
    buffer = bytearray(nr_bytes)
    view = memoryview(buffer)
    received = 0
    while received < nr_bytes:
        count = raw.recv_into(view[received:], nr_bytes - received)
        if count == 0:
            break
        received += count
    view.release()
    del buffer[received:]
    return buffer
