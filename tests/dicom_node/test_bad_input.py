"""dicom_node.ingest and dicom_node.validation: bad input, table-driven, over real associations: each case gets its
DIMSE status (or its context rejected), the node keeps serving the next association, and nothing but complete, accepted
instances is left in the spool."""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pydicom
import pytest
from pydicom.uid import UID, ExplicitVRLittleEndian
from pynetdicom import AE, _config

from db.engine import SessionFactory
from tests.helpers.peers import storescu
from tests.helpers.relay import cutting_relay
from tests.helpers.scp import Node, wait_for

CR = UID("1.2.840.10008.5.1.4.1.1.1")
CT = UID("1.2.840.10008.5.1.4.1.1.2")
MPEG2 = UID("1.2.840.10008.1.2.4.100")
VERIFICATION = UID("1.2.840.10008.1.1")
REJECTED = -1
"""Not a DIMSE status: the presentation context was refused at association, so no C-STORE could be sent."""


@contextmanager
def chunked_send() -> Iterator[None]:
    """Send files as their raw bytes, with the request's UIDs taken from the file meta, as a careless SCU would."""
    previous = _config.STORE_SEND_CHUNKED_DATASET
    _config.STORE_SEND_CHUNKED_DATASET = True
    try:
        yield
    finally:
        _config.STORE_SEND_CHUNKED_DATASET = previous


def send(port: int, path: Path, sop_class: UID = CR, syntaxes: tuple[UID, ...] = (ExplicitVRLittleEndian,)) -> int:
    ae = AE(ae_title="BADPEER")
    ae.add_requested_context(sop_class, list(syntaxes))
    ae.add_requested_context(VERIFICATION)  # as real SCUs do: the association stands even if storage is refused
    assoc = ae.associate("127.0.0.1", port, ae_title="CXR_AI")
    assert assoc.is_established, "the node accepts the association itself"
    try:
        if not any(c.abstract_syntax == sop_class for c in assoc.accepted_contexts):
            return REJECTED
        with chunked_send():
            response = assoc.send_c_store(path)
        return int(response.Status)
    finally:
        assoc.release()


def write(ds: pydicom.Dataset, path: Path) -> Path:
    ds.save_as(path, enforce_file_format=True)
    return path


def truncated(rg1: pydicom.Dataset, path: Path) -> Path:
    write(rg1, path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 100_000])  # cut inside Pixel Data: its length field now lies
    return path


def uid_mismatch(rg1: pydicom.Dataset, path: Path) -> Path:
    write(rg1, path)
    ds = pydicom.dcmread(path)
    ds.file_meta.MediaStorageSOPInstanceUID = "1.2.826.0.1.3680043.8.498.77"  # the request will carry this UID
    ds.save_as(path, enforce_file_format=False)
    return path


def traversal(rg1: pydicom.Dataset, path: Path) -> Path:
    ds = copy.deepcopy(rg1)
    ds.StudyInstanceUID = "1.2.3/../../../../tmp/evil"
    return write(ds, path)


def short_pixels(rg1: pydicom.Dataset, path: Path) -> Path:
    ds = copy.deepcopy(rg1)
    ds.PixelData = ds.PixelData[:-1000]
    return write(ds, path)


def absurd_size(rg1: pydicom.Dataset, path: Path) -> Path:
    ds = copy.deepcopy(rg1)
    ds.Rows, ds.Columns = 60000, 60000
    return write(ds, path)


def as_ct(rg1: pydicom.Dataset, path: Path) -> Path:
    ds = copy.deepcopy(rg1)
    ds.SOPClassUID = CT
    return write(ds, path)


@dataclass(frozen=True)
class Case:
    name: str
    make: Callable[[pydicom.Dataset, Path], Path]
    expected: int
    sop_class: UID = CR
    syntaxes: tuple[UID, ...] = (ExplicitVRLittleEndian,)


CASES = [
    Case("truncated file", truncated, 0xC000),
    Case("UID mismatch", uid_mismatch, 0xA900),
    Case("UID with ../", traversal, 0xC000),
    Case("unknown SOP class", as_ct, REJECTED, sop_class=CT),
    Case("unsupported transfer syntax", write, REJECTED, syntaxes=(MPEG2,)),
    Case("pixel data shorter than Rows x Columns", short_pixels, 0xC000),
    Case("absurd dimensions", absurd_size, 0xC000),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input_gets_its_status_and_leaves_nothing(
    case: Case, node: Node, rg1_dataset: pydicom.Dataset, tmp_path: Path, rg1: Path
) -> None:
    path = case.make(copy.deepcopy(rg1_dataset), tmp_path / "bad.dcm")
    assert send(node.port, path, case.sop_class, case.syntaxes) == case.expected
    assert node.spooled_files() == [], "nothing of a refused instance is kept"
    assert storescu(rg1, node.port).returncode == 0, "the node serves the next association"
    assert [p.name for p in node.spooled_files()] == [f"{rg1_dataset.SOPInstanceUID}.dcm"]
    assert not (tmp_path.parent / "tmp" / "evil").exists()


def test_duplicate_instance_is_acknowledged_and_makes_no_second_job(node: Node, rg1: Path) -> None:
    assert send(node.port, rg1) == 0x0000
    wait_for(lambda: len(node.enqueued) == 1)
    assert send(node.port, rg1) == 0x0000
    assert storescu(rg1, node.port).returncode == 0
    assert len(node.spooled_files()) == 1
    time.sleep(1.0)  # many completion polls: a second job would have been enqueued by now
    assert len(node.enqueued) == 1


def test_connection_cut_mid_transfer_stores_nothing(node: Node, rg1: Path) -> None:
    """The network fails 1 MB into RG1's 7 MB: no handler runs, no file or row remains, and the node goes on serving."""
    with cutting_relay(node.port, cut_after_bytes=1_000_000) as port:
        result = storescu(rg1, port)
    assert result.returncode != 0, "the sender saw the failure"
    assert node.spooled_files() == []
    assert list((node.settings.spool_dir / ".incoming").iterdir()) == []
    assert storescu(rg1, node.port).returncode == 0, "the node serves the next association"
    assert len(node.spooled_files()) == 1


def test_a_spool_that_cannot_be_written_answers_out_of_resources(
    node: Node, rg1_dataset: pydicom.Dataset, rg1: Path
) -> None:
    blocker = node.settings.spool_dir / str(rg1_dataset.StudyInstanceUID)
    blocker.write_text("a file where the study folder must go")
    assert send(node.port, rg1) == 0xA700
    blocker.unlink()
    assert list((node.settings.spool_dir / ".incoming").iterdir()) == []
    assert send(node.port, rg1) == 0x0000, "the sender's retry succeeds once the fault is gone"


def test_a_database_that_cannot_commit_answers_out_of_resources_and_keeps_no_file(
    node: Node, session_factory: SessionFactory, rg1: Path
) -> None:
    from sqlalchemy import text

    with session_factory.begin() as s:
        s.execute(text("ALTER TABLE instance RENAME TO instance_unavailable"))
    try:
        assert send(node.port, rg1) == 0xA700
        assert node.spooled_files() == [], "a file without its row is not promoted"
    finally:
        with session_factory.begin() as s:
            s.execute(text("ALTER TABLE instance_unavailable RENAME TO instance"))
    assert send(node.port, rg1) == 0x0000


def test_associations_beyond_the_limit_are_rejected(tmp_path: Path, session_factory: SessionFactory) -> None:
    from config.settings import ScpSettings, Settings
    from dicom_node.scp import start_node

    settings = Settings(data_dir=tmp_path / "var", scp=ScpSettings(host="127.0.0.1", port=0, maximum_associations=1))
    running = start_node(settings, session_factory, lambda job_id: None)
    try:
        ae = AE(ae_title="PEER")
        ae.add_requested_context(VERIFICATION)
        first = ae.associate("127.0.0.1", running.port, ae_title="CXR_AI")
        assert first.is_established
        second = ae.associate("127.0.0.1", running.port, ae_title="CXR_AI")
        # What the requestor saw instead, if not the rejection: seen once (an abort or a closed connection?).
        seen = {name: getattr(second, name) for name in ("is_established", "is_aborted", "is_released")}
        assert second.is_rejected, f"the second concurrent association is refused; the requestor saw {seen}"
        first.release()
        wait_for(lambda: not running.server.active_associations)  # the released one's thread has ended
        third = ae.associate("127.0.0.1", running.port, ae_title="CXR_AI")
        assert third.is_established
        third.release()
    finally:
        running.stop()
