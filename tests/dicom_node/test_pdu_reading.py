"""dicom_node.pdu_reading: PDUs read off an accepted association, a P-DATA-TF's values left as views of the one
buffer its body was read into; what the state machine hears is pynetdicom's, for every way a PDU can fail."""

from __future__ import annotations

import logging
import socket
import struct
from collections.abc import Iterator
from pathlib import Path

import pydicom
import pytest
from pynetdicom import AE, evt
from pynetdicom.association import Association
from pynetdicom.dul import DULServiceProvider
from pynetdicom.events import Event
from pynetdicom.pdu import A_RELEASE_RQ, P_DATA_TF
from pynetdicom.pdu_primitives import P_DATA
from pynetdicom.sop_class import ComputedRadiographyImageStorage
from pynetdicom.transport import AssociationSocket

from config.settings import ScpSettings, Settings
from db.engine import SessionFactory
from dicom_node.admission import bound_pdu_length
from dicom_node.pdu_reading import CLOSED, INVALID, P_DATA_RECEIVED, Decoder, p_data_tf_views, read_pdu
from dicom_node.scp import start_node


def _encoded_p_data(values: list[tuple[int, bytes]]) -> bytes:
    primitive = P_DATA()
    primitive.presentation_data_value_list = [[context_id, value] for context_id, value in values]
    return P_DATA_TF(primitive).encode()


def _theirs(encoded: bytes) -> P_DATA_TF:
    pdu = P_DATA_TF()
    pdu.decode(encoded)
    return pdu


def _values(pdu: P_DATA_TF) -> list[tuple[int | None, bytes]]:
    return [(item.context_id, bytes(item.data or b"")) for item in pdu.presentation_data_value_items]


def test_a_p_data_tf_decodes_as_pynetdicom_decodes_it_without_copying_its_values() -> None:
    values = [(1, b"\x03" + b"command"), (3, b"\x00" + bytes(range(256)) * 512), (3, b"\x02"), (5, b"")]
    encoded = _encoded_p_data(values)
    body = bytearray(encoded[6:])
    ours = p_data_tf_views(body)
    assert _values(ours) == _values(_theirs(encoded)) == values
    for item in ours.presentation_data_value_items:
        assert isinstance(item.data, memoryview) and item.data.obj is body, "each value is a view of the read buffer"


def test_an_item_holding_only_its_context_id_is_read_as_pynetdicom_reads_it() -> None:
    body = struct.pack(">LB", 1, 1) + struct.pack(">LB", 3, 1) + b"\x02x"
    assert _values(p_data_tf_views(bytearray(body))) == _values(_theirs(struct.pack(">BBL", 4, 0, len(body)) + body))


@pytest.mark.parametrize(
    "body",
    [
        struct.pack(">LB", 100, 1) + b"\x02short",  # an item length past the PDU's end
        struct.pack(">LB", 0, 1) + b"\x02",  # an item without even its context ID
        struct.pack(">LB", 2, 1) + b"\x02" + b"\x00\x00",  # two bytes of a next item's header
    ],
)
def test_what_pynetdicom_refuses_is_refused(body: bytes) -> None:
    with pytest.raises((AssertionError, struct.error)):  # pynetdicom's own checks
        _theirs(struct.pack(">BBL", 4, 0, len(body)) + body)
    with pytest.raises((ValueError, struct.error)):
        p_data_tf_views(bytearray(body))


@pytest.fixture
def wire() -> Iterator[tuple[socket.socket, AssociationSocket, Association]]:
    """A socket pair: the test writes to one end; the other is an acceptor association's socket."""
    writer, reader = socket.socketpair()
    assoc = Association(AE(), "acceptor")
    sock = AssociationSocket(assoc, client_socket=reader)
    yield writer, sock, assoc
    writer.close()
    reader.close()


def _pynetdicoms(assoc: Association) -> Decoder:
    """pynetdicom's own decoder, as the SCP's DUL hands it to ``read_pdu`` for the types that are not P-DATA-TF."""
    return DULServiceProvider(assoc)._decode_pdu


def test_each_pdu_type_is_read_whole_and_a_p_data_tf_is_ours(
    wire: tuple[socket.socket, AssociationSocket, Association],
) -> None:
    writer, sock, assoc = wire
    encoded = _encoded_p_data([(1, b"\x02" + b"x" * 70_000)])
    release = A_RELEASE_RQ().encode()
    writer.sendall(encoded + release)
    pdu, event = read_pdu(sock, assoc, _pynetdicoms(assoc))
    assert event == P_DATA_RECEIVED and isinstance(pdu, P_DATA_TF)
    assert _values(pdu) == [(1, b"\x02" + b"x" * 70_000)]
    other, event = read_pdu(sock, assoc, _pynetdicoms(assoc))
    assert event == "Evt12" and isinstance(other, A_RELEASE_RQ), "an A-RELEASE-RQ, decoded by pynetdicom"


def test_raw_data_handlers_hear_the_whole_pdu_and_pdu_handlers_the_decoded_one(
    wire: tuple[socket.socket, AssociationSocket, Association],
) -> None:
    writer, sock, assoc = wire
    heard: dict[str, object] = {}
    assoc.bind(evt.EVT_DATA_RECV, lambda event: heard.setdefault("data", event.data))
    assoc.bind(evt.EVT_PDU_RECV, lambda event: heard.setdefault("pdu", event.pdu))
    encoded = _encoded_p_data([(1, b"\x03cmd")])
    writer.sendall(encoded)
    pdu, _ = read_pdu(sock, assoc, _pynetdicoms(assoc))
    assert heard == {"data": encoded, "pdu": pdu}


@pytest.mark.parametrize(
    ("sent", "event", "logged"),
    [
        (b"", CLOSED, None),  # the peer closed between PDUs
        (b"\x04\x00\x00", CLOSED, None),  # ...or within a header
        (b"\x04\x00\x00\x00\x00\x10" + b"x" * 8, CLOSED, "connection closed 8 bytes into a PDU of 16"),
        (b"\x09\x00\x00\x00\x00\x01x", INVALID, "unknown PDU type 0x09 received"),
        (b"\x04\x00\x00\x00\x00\x03" + b"\x00\x00\x00", INVALID, "a received PDU does not decode (error)"),
    ],
)
def test_a_pdu_that_cannot_be_read_gives_pynetdicoms_event(
    wire: tuple[socket.socket, AssociationSocket, Association],
    caplog: pytest.LogCaptureFixture,
    sent: bytes,
    event: str,
    logged: str | None,
) -> None:
    writer, sock, assoc = wire
    writer.sendall(sent)
    writer.shutdown(socket.SHUT_WR)
    with caplog.at_level(logging.ERROR, logger="dicom_node.pdu_reading"):
        assert read_pdu(sock, assoc, _pynetdicoms(assoc)) == event
    assert [r.getMessage() for r in caplog.records] == ([logged] if logged else [])


def test_a_peer_that_stops_mid_pdu_is_taken_for_a_closed_connection_at_the_timeout(
    wire: tuple[socket.socket, AssociationSocket, Association], caplog: pytest.LogCaptureFixture
) -> None:
    writer, sock, assoc = wire
    assert sock.socket is not None
    sock.socket.settimeout(0.2)  # pynetdicom's network timeout, shortened
    writer.sendall(b"\x04\x00\x00\x00\x00\x10" + b"x" * 8)  # and then nothing, the connection left open
    with caplog.at_level(logging.ERROR, logger="dicom_node.pdu_reading"):
        assert read_pdu(sock, assoc, _pynetdicoms(assoc)) == CLOSED
    assert [r.getMessage() for r in caplog.records] == [
        "connection failed before a whole PDU was received (TimeoutError)"
    ]


def test_an_oversized_pdu_is_refused_unread_with_the_refusals_own_line_only(
    wire: tuple[socket.socket, AssociationSocket, Association], caplog: pytest.LogCaptureFixture
) -> None:
    writer, sock, assoc = wire
    refused: list[int] = []
    bound_pdu_length(sock, 65536, refused.append)
    writer.sendall(struct.pack(">BBL", 4, 0, 10_000_000))
    with caplog.at_level(logging.ERROR, logger="dicom_node.pdu_reading"):
        assert read_pdu(sock, assoc, _pynetdicoms(assoc)) == CLOSED
    assert refused == [10_000_000] and not caplog.records
    assert writer.recv(16)[:1] == b"\x07", "the peer was sent an A-ABORT"


def test_a_data_set_in_hundreds_of_small_pdus_is_spooled_as_sent(
    tmp_path: Path, session_factory: SessionFactory, rg1: Path
) -> None:
    """Through the SCP: at the smallest maximum PDU the node advertises, RG1 arrives in about 440 P-DATA-TFs, each of
    whose values is a view of its own buffer; the spooled data set equals the one sent."""
    settings = Settings(data_dir=tmp_path / "var", scp=ScpSettings(host="127.0.0.1", port=0, max_pdu_size=16384))
    running = start_node(settings, session_factory, lambda job_id: None)
    pdus: list[int] = []
    received: list[type] = []
    running.server.bind(evt.EVT_PDU_RECV, lambda event: _value_types(event, received))
    try:
        ae = AE(ae_title="PACS")
        ae.add_requested_context(ComputedRadiographyImageStorage, pydicom.dcmread(rg1).file_meta.TransferSyntaxUID)
        requestor = ae.associate(
            "127.0.0.1",
            running.port,
            ae_title="CXR_AI",
            evt_handlers=[(evt.EVT_PDU_SENT, lambda event: _count_data(event, pdus))],
        )
        assert requestor.is_established
        assert int(requestor.send_c_store(pydicom.dcmread(rg1)).Status) == 0
        requestor.release()
        assert len(pdus) > 400 and max(pdus) <= 6 + 16384
        assert len(received) >= len(pdus) and set(received) == {memoryview}, "the SCP's reader kept every value a view"
        # Acknowledged only once renamed into place (dicom_node.spool).
        (spooled,) = [p for p in settings.spool_dir.rglob("*.dcm") if ".incoming" not in p.parts]
        assert pydicom.dcmread(spooled) == pydicom.dcmread(rg1)
    finally:
        running.stop()


def _count_data(event: Event, lengths: list[int]) -> None:
    if isinstance(event.pdu, P_DATA_TF):
        lengths.append(len(event.pdu.encode()))


def _value_types(event: Event, types: list[type]) -> None:
    if isinstance(event.pdu, P_DATA_TF):
        types.extend(type(item.data) for item in event.pdu.presentation_data_value_items)
