"""Reading one PDU off an accepted association, a P-DATA-TF's values left in the buffer they were read into.

pynetdicom copies each P-DATA-TF body five times on its way from the socket to the spool file: appended to the
6-byte header, to ``bytes``, the PDU's slice past its header, each item's slice, and the fragment past its message
control header. For a 7 MB radiograph that is 36 MB of copying into fresh memory per instance, on the thread that
reads the socket (``bench/pdu_receive.py``). Here the body is read once, into a buffer of the length its header
states (the association's bounded ``recv``: ``dicom_node.admission``), and each presentation data value is a
``memoryview`` of that buffer; pynetdicom's DIMSE layer slices and writes it to the file as it would ``bytes``.

The other PDUs (association, release, abort) are few and small and go through pynetdicom's own decoding. What each
outcome means to the state machine is pynetdicom's: Evt17 where the connection closed or failed before a whole PDU
arrived, Evt19 for an unknown PDU type or a body that does not decode.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Callable
from typing import Any, cast

from pynetdicom import evt
from pynetdicom.association import Association
from pynetdicom.pdu import P_DATA_TF, _PDUType
from pynetdicom.pdu_items import PresentationDataValueItem
from pynetdicom.transport import AssociationSocket

from dicom_node.admission import OversizedPduError

logger = logging.getLogger(__name__)

PDU_HEADER = struct.Struct(">BBL")
"""PDU type, reserved, body length (PS3.8 9.3.1)."""
PDV_HEADER = struct.Struct(">LB")
"""Item length, presentation context ID (PS3.8 9.3.5.1)."""
P_DATA_TF_TYPE = 0x04
PDU_TYPES = frozenset(range(0x01, 0x08))
CLOSED = "Evt17"
INVALID = "Evt19"
P_DATA_RECEIVED = "Evt10"

Decoder = Callable[[bytearray], tuple[_PDUType, str]]


def read_pdu(sock: AssociationSocket, assoc: Association, decode_other: Decoder) -> tuple[_PDUType, str] | str:
    """The next PDU on ``sock`` and its state-machine event, or only the event (``CLOSED``, ``INVALID``) when no
    PDU can be read. ``decode_other`` is pynetdicom's decoder, for every type but P-DATA-TF."""
    try:
        header = sock.recv(PDU_HEADER.size)
        if len(header) < PDU_HEADER.size:
            return CLOSED  # the peer closed the connection between PDUs: pynetdicom says nothing either
        pdu_type, _, length = PDU_HEADER.unpack(header)
        if pdu_type not in PDU_TYPES:
            logger.error("unknown PDU type 0x%02X received", pdu_type)
            return INVALID
        body = sock.recv(length)
    except OSError as exc:  # a reset or the network timeout; an oversized PDU was logged where it was refused
        if not isinstance(exc, OversizedPduError):
            logger.error("connection failed before a whole PDU was received (%s)", type(exc).__name__)
        return CLOSED
    if len(body) != length:
        logger.error("connection closed %d bytes into a PDU of %d", len(body), length)
        return CLOSED
    try:
        if pdu_type == P_DATA_TF_TYPE:
            return _p_data_tf(assoc, header, body), P_DATA_RECEIVED
        return decode_other(bytearray(header) + body)
    except Exception as exc:  # the type only: what the peer sent may be in the message
        logger.error("a received PDU does not decode (%s)", type(exc).__name__)
        return INVALID


def p_data_tf_views(body: bytearray | bytes) -> P_DATA_TF:
    """The P-DATA-TF with this body (what follows its 6-byte header), each value a view of ``body``. What pynetdicom
    refuses is refused: a partial item header (``struct.error``), an item without its context ID or running past the
    body's end (``ValueError``)."""
    view = memoryview(body)
    pdu = P_DATA_TF()
    offset = 0
    while offset < len(view):
        item_length, context_id = PDV_HEADER.unpack_from(view, offset)
        if item_length < 1 or offset + 4 + item_length > len(view):
            raise ValueError(f"a PDV item of {item_length} bytes at offset {offset} does not fit its PDU")
        item = PresentationDataValueItem()
        item.presentation_context_id = context_id
        # pynetdicom types the value as bytes; its readers index, slice and write it, which a view does the same
        item.presentation_data_value = cast(bytes, view[offset + PDV_HEADER.size : offset + 4 + item_length])
        pdu.presentation_data_value_items.append(item)
        offset += 4 + item_length
    return pdu


def _p_data_tf(assoc: Association, header: bytes | bytearray, body: bytearray) -> P_DATA_TF:
    """pynetdicom's notifications for a received PDU, as its own decoder gives them; the PDU's bytes are joined only
    when a handler is bound to the raw data."""
    if cast(list[Any], assoc.get_handlers(evt.EVT_DATA_RECV)):
        evt.trigger(assoc, evt.EVT_DATA_RECV, {"data": bytes(header) + bytes(body)})
    pdu = p_data_tf_views(body)
    evt.trigger(assoc, evt.EVT_PDU_RECV, {"pdu": pdu})
    return pdu
