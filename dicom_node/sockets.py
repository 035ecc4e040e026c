"""How the node's DICOM sockets send and receive.

Every socket the node opens or accepts sends at once (TCP_NODELAY): DIMSE is request and response, and with Nagle's
algorithm on, the last small segment of a message waits for the peer's delayed ACK, which costs about 40-90 ms per
C-STORE or C-ECHO whatever the object's size.

An accepted association reads each PDU into one buffer the size its header states, in as few calls as the kernel
allows: pynetdicom reads 4 KiB at a time and appends, 256 calls and copies for each 1 MiB PDU
(``bench/pdu_receive.py``).

Whether data waits is asked of poll(2), never select(2): select cannot watch a descriptor numbered 1024 or above
(FD_SETSIZE) and raises, which pynetdicom takes for a closed connection. A process holding many descriptors (a flood of
idle connections waiting out the ACSE timeout, each with its socket and its reactor's wake-up pair) then dropped every
association that came after."""

from __future__ import annotations

import select
import socket
import ssl
from collections.abc import Sequence

from pynetdicom.events import Event
from pynetdicom.transport import AssociationSocket


def readable(descriptors: Sequence[int], timeout_s: float) -> bool:
    """Whether any of ``descriptors`` has data, an end or an error to read within ``timeout_s`` (as select's read set
    would say, for any descriptor number). A negative descriptor (a closed socket's) raises ``ValueError``."""
    poller = select.poll()
    for descriptor in descriptors:
        poller.register(descriptor, select.POLLIN | select.POLLPRI)
    return bool(poller.poll(timeout_s * 1000))


class PolledSocket(AssociationSocket):
    """pynetdicom's association socket, its ``ready`` asking poll(2) instead of select(2) (see the module's note)."""

    @property
    def ready(self) -> bool:
        """pynetdicom's: whether data waits, and Evt17 (connection closed) if the socket cannot be asked."""
        raw = self.socket
        if raw is None or self._is_connected is False:
            return False
        try:
            waiting = readable([raw.fileno()], 0)
        except (OSError, ValueError):
            self.event_queue.put("Evt17")
            return False
        # decrypted bytes may wait in the SSL buffer, where poll cannot see them
        return waiting or (isinstance(raw, ssl.SSLSocket) and bool(raw.pending()))


def polled(sock: AssociationSocket) -> PolledSocket:
    """The same socket, its ``ready`` asking poll(2); pynetdicom made it, so only its class changes."""
    sock.__class__ = PolledSocket
    return sock  # type: ignore[return-value]


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
