"""Who may hold an association: at most ``scp.maximum_associations`` at once, and at most
``scp.maximum_associations_per_source`` from one address. A slot is taken when the peer asks for an association
(A-ASSOCIATE-RQ) and given back when its connection closes; a connection that never asks holds none, and is dropped
after ``scp.acse_timeout_s``.

It also bounds what one PDU may cost: a PDU is read whole, whatever length its header claims, and pynetdicom does not
check the maximum it advertised. ``bound_pdu_length`` refuses a longer one from its 6-byte header, before reading it.
"""

from __future__ import annotations

import contextlib
import struct
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from pynetdicom.transport import AssociationSocket

from config.settings import ScpSettings
from dicom_node.sockets import receive_whole

LIMIT_EXCEEDED = (0x02, 0x03, 0x02)
"""A-ASSOCIATE-RJ: rejected-transient, service provider (presentation related), local limit exceeded."""


@dataclass
class AssociationSlots:
    settings: ScpSettings
    _holders: dict[int, str] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def take(self, association_id: int, address: str) -> str | None:
        """Take a slot for this association; None when taken, else why not (for the audit trail)."""
        with self._lock:
            if association_id in self._holders:
                return None
            if len(self._holders) >= self.settings.maximum_associations:
                return "too many associations"
            if Counter(self._holders.values())[address] >= self.settings.maximum_associations_per_source:
                return "too many associations from this address"
            self._holders[association_id] = address
            return None

    def give_back(self, association_id: int) -> None:
        with self._lock:
            self._holders.pop(association_id, None)

    def held(self) -> int:
        with self._lock:
            return len(self._holders)


PDU_HEADER_BYTES = 6
MINIMUM_PDU_BOUND = 64 * 1024
"""An A-ASSOCIATE-RQ is read before any maximum is negotiated; one with many presentation contexts runs to a few
KiB, so no PDU is refused below this, whatever ``scp.max_pdu_size`` says."""
A_ABORT_INVALID_PDU_PARAMETER = struct.pack(">BBLBBBB", 0x07, 0x00, 4, 0x00, 0x00, 0x02, 0x06)
"""A-ABORT: source service-provider (2), reason invalid-PDU-parameter value (6) (PS3.8 9.3.8)."""


class OversizedPduError(OSError):
    """Raised inside the PDU reader (``dicom_node.pdu_reading``), which handles an ``OSError`` as a closed connection
    (Evt17); the refusal has its own warning line, so the reader logs nothing more."""


def pdu_bound(settings: ScpSettings) -> int:
    """The longest PDU body read: the advertised maximum, never below ``MINIMUM_PDU_BOUND``."""
    return max(settings.max_pdu_size, MINIMUM_PDU_BOUND)


def bound_pdu_length(sock: AssociationSocket, bound: int, refused: Callable[[int], None]) -> None:
    """Make ``sock`` refuse a PDU whose header claims a body longer than ``bound``: the peer gets an A-ABORT, the
    connection closes, and ``refused`` hears the claimed length. Nothing of the body is read.

    The PDU reader (``dicom_node.pdu_reading``) reads a PDU in two calls of the socket's ``recv``, the 6-byte header
    and then the length it states; this wraps that ``recv`` on one connection, and reads what it allows whole
    (``dicom_node.sockets.receive_whole``)."""

    def bounded_recv(nr_bytes: int) -> bytearray:
        if nr_bytes > bound:
            refused(nr_bytes)
            raw = sock.socket
            if raw is not None:
                with contextlib.suppress(OSError):  # the peer is gone already; the connection closes all the same
                    raw.sendall(A_ABORT_INVALID_PDU_PARAMETER)
            raise OversizedPduError(f"a PDU of {nr_bytes} bytes exceeds the {bound}-byte bound")
        return receive_whole(sock, nr_bytes)

    sock.recv = bounded_recv  # type: ignore[method-assign]
