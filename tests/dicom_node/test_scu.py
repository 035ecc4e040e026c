"""dicom_node.scu against real peers: C-ECHO, C-STORE of uncompressed and JPEG 2000 files over one association, the
statuses a refusing SCP answers (and which of them are worth retrying), an unreachable destination, a storage
commitment request the peer does not support; and dicom_node.sockets on both ends of an association."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from io import BytesIO
from pathlib import Path

import pydicom
import pytest
from pydicom import uid
from pynetdicom import AE
from pynetdicom import _config as pynetdicom_config
from pynetdicom.dsutils import split_dataset
from pynetdicom.events import Event

from config.outputs import Destination
from dicom_node import scu as scu_module
from dicom_node.scu import echo, open_association, send_files
from tests.helpers.peers import free_port, received, storescp
from tests.helpers.scp import VERIFICATION, Node, serving


def destination(port: int, ae_title: str = "PACS") -> Destination:
    return Destination(name="pacs", ae_title=ae_title, host="127.0.0.1", port=port)


@contextmanager
def answering_scp(status: int) -> Iterator[int]:
    """A pynetdicom SCP that answers every C-STORE with ``status``; yields its port."""
    ae = AE(ae_title="PACS")
    ae.require_called_aet = True
    for sop_class in (uid.ComputedRadiographyImageStorage, uid.DigitalXRayImageStorageForPresentation):
        ae.add_supported_context(sop_class, [uid.ExplicitVRLittleEndian, uid.ImplicitVRLittleEndian, uid.JPEG2000])

    def answer(event: Event) -> int:
        return status

    with serving(ae, answer) as port:
        yield port


@contextmanager
def capturing_scp(syntaxes: list[str]) -> Iterator[tuple[int, list[tuple[str, bytes]]]]:
    """A pynetdicom SCP taking CR in ``syntaxes`` only; yields its port and, per C-STORE, (transfer syntax, the data
    set's bytes exactly as they arrived)."""
    ae = AE(ae_title="PACS")
    ae.add_supported_context(uid.ComputedRadiographyImageStorage, syntaxes)
    arrived: list[tuple[str, bytes]] = []

    def keep(event: Event) -> int:
        arrived.append((str(event.context.transfer_syntax), event.request.DataSet.getvalue()))
        return 0x0000

    with serving(ae, keep) as port:
        yield port, arrived


def test_a_file_goes_as_written_and_is_re_encoded_only_for_a_peer_that_takes_another_syntax(
    rg1: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The data set's bytes on the wire are the file's own, and the file was never read whole; a peer that accepts
    only implicit VR gets the same data set re-encoded in it."""
    written = rg1.read_bytes()
    _, offset = split_dataset(rg1)
    reads: list[bool] = []
    real_dcmread = scu_module.pydicom.dcmread

    def spy(path: Path, **options: bool) -> pydicom.Dataset:
        reads.append(options.get("stop_before_pixels", False))
        return real_dcmread(path, **options)

    monkeypatch.setattr(scu_module.pydicom, "dcmread", spy)
    # Our SCP, started by other tests in this process, streams what it receives to a file; this one keeps it in memory.
    monkeypatch.setattr(pynetdicom_config, "STORE_RECV_CHUNKED_DATASET", False)
    with capturing_scp([uid.ExplicitVRLittleEndian, uid.ImplicitVRLittleEndian]) as (port, arrived):
        (outcome,) = send_files(destination(port), [rg1])
    assert outcome.ok and arrived == [(uid.ExplicitVRLittleEndian, written[offset:])]
    assert reads == [True], "only the header was read"
    reads.clear()
    with capturing_scp([uid.ImplicitVRLittleEndian]) as (port, arrived):
        (outcome,) = send_files(destination(port), [rg1])
    assert outcome.ok and [syntax for syntax, _ in arrived] == [uid.ImplicitVRLittleEndian]
    assert reads == [True, False], "read whole to be encoded again"
    again = pydicom.dcmread(BytesIO(arrived[0][1]), force=True)  # no preamble: read as implicit VR little endian
    source = real_dcmread(rg1)
    assert again.SOPInstanceUID == source.SOPInstanceUID and again.PixelData == source.PixelData


def test_echo_a_peer_and_an_unreachable_address(tmp_path: Path) -> None:
    with storescp(tmp_path / "pacs") as port:
        assert echo(destination(port)) == 0x0000
    assert echo(destination(free_port()), timeout_s=2.0) is None


def test_files_of_different_syntaxes_go_over_one_association_as_they_are(
    tmp_path: Path, rg1: Path, rg1_j2ki: Path
) -> None:
    with storescp(tmp_path / "pacs") as port:
        outcomes = send_files(destination(port), [rg1, rg1_j2ki])
    assert [(o.path, o.status, o.error, o.ok) for o in outcomes] == [(rg1, 0, None, True), (rg1_j2ki, 0, None, True)]
    syntaxes = {str(ds.SOPInstanceUID): str(ds.file_meta.TransferSyntaxUID) for ds in received(tmp_path / "pacs")}
    for path in (rg1, rg1_j2ki):
        sent = pydicom.dcmread(path, stop_before_pixels=True)
        assert syntaxes[str(sent.SOPInstanceUID)] == str(sent.file_meta.TransferSyntaxUID)


@pytest.mark.parametrize(
    ("status", "ok", "permanent"),
    [
        (0xA900, False, True),
        (0xC000, False, True),
        (0xA700, False, False),
        (0xA701, False, False),
        (0xB000, True, False),
    ],
)
def test_a_refusal_says_whether_sending_again_can_help(rg1: Path, status: int, ok: bool, permanent: bool) -> None:
    with answering_scp(status) as port:
        (outcome,) = send_files(destination(port), [rg1])
    assert (outcome.status, outcome.ok, outcome.permanent_failure) == (status, ok, permanent)
    assert outcome.error == (None if status == 0 else f"status 0x{status:04X}")


def test_an_unreachable_or_refusing_destination_gets_no_status(rg1: Path) -> None:
    (down,) = send_files(destination(free_port()), [rg1], timeout_s=2.0)
    assert down.status is None and not down.ok and not down.permanent_failure
    assert down.error == "destination unreachable or association aborted"
    with answering_scp(0) as port:
        (wrong_ae,) = send_files(destination(port, ae_title="NOT_PACS"), [rg1])
    assert wrong_ae.status is None and wrong_ae.error == "association rejected"


def test_a_commitment_the_peer_does_not_support_is_reported_on_every_object(rg1: Path) -> None:
    with answering_scp(0) as port:
        (outcome,) = send_files(destination(port), [rg1], commitment_transaction_uid=str(uid.generate_uid()))
    assert outcome.status is None and (outcome.error or "").startswith("storage commitment not accepted")


def test_both_ends_of_an_association_send_at_once(node: Node) -> None:
    """dicom_node.sockets: TCP_NODELAY on the socket the SCP accepts and on the one the SCU opens (Nagle's algorithm
    against delayed ACK cost about 40-90 ms per DIMSE exchange)."""
    ae = AE(ae_title="PACS")
    ae.add_requested_context(VERIFICATION)
    destination = Destination(name="node", ae_title="CXR_AI", host="127.0.0.1", port=node.port)
    association = open_association(ae, destination)
    assert association.is_established
    try:
        ours = association.dul.socket.socket
        assert ours.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
        (accepted,) = node.running.server.active_associations
        theirs = accepted.dul.socket.socket
        assert theirs.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
        assert association.send_c_echo().Status == 0
    finally:
        association.release()


def test_a_compressed_file_reaches_a_peer_without_its_syntax_decompressed(
    rg1_j2kr: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A lossless JPEG 2000 file to a peer that takes only explicit VR little endian: sent decompressed, pixel for
    pixel the same image."""
    monkeypatch.setattr(pynetdicom_config, "STORE_RECV_CHUNKED_DATASET", False)
    with capturing_scp([uid.ExplicitVRLittleEndian]) as (port, arrived):
        (outcome,) = send_files(destination(port), [rg1_j2kr])
    assert outcome.ok, outcome.error
    assert [syntax for syntax, _ in arrived] == [uid.ExplicitVRLittleEndian]
    sent = pydicom.dcmread(BytesIO(arrived[0][1]), force=True)
    sent.file_meta = pydicom.dataset.FileMetaDataset()
    sent.file_meta.TransferSyntaxUID = uid.ExplicitVRLittleEndian
    assert (sent.pixel_array == pydicom.dcmread(rg1_j2kr).pixel_array).all()
