"""dicom_node.spool: UID checks, atomic adoption, partial receptions, and header text read back from the spool."""

from __future__ import annotations

from pathlib import Path

import pydicom
import pytest

from dicom_node.spool import InvalidUIDError, Spool, is_valid_uid, read_spooled_text


@pytest.mark.parametrize(
    ("uid", "valid"),
    [
        ("1.2.840.10008.5.1.4.1.1.1", True),
        ("2.25.123", True),
        ("1.2.3/../../etc", False),
        ("../1.2.3", False),
        ("1..2", False),
        ("1.2.", False),
        ("", False),
        ("1." + "2" * 63, False),
        ("1.2.3\x00", False),
    ],
)
def test_uid_validation(uid: str, valid: bool) -> None:
    assert is_valid_uid(uid) is valid


def received(spool: Spool, data: bytes = b"DICM" * 10) -> Path:
    path = spool.incoming / "tmp-received.dcm"
    path.write_bytes(data)
    return path


def test_a_received_file_is_renamed_into_place(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    source = received(spool)
    path = spool.adopt(source, "1.2.3", "1.2.3.4")
    assert path == tmp_path / "1.2.3" / "1.2.3.4.dcm"
    assert path.read_bytes() == b"DICM" * 10 and not source.exists()
    assert list(spool.incoming.iterdir()) == []


def test_a_file_received_elsewhere_is_copied_in_first(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool")
    elsewhere = tmp_path / "other.dcm"
    elsewhere.write_bytes(b"data")
    path = spool.adopt(elsewhere, "1.2.3", "1.2.3.4")
    assert path.read_bytes() == b"data" and list(spool.incoming.iterdir()) == []


def test_path_traversal_is_refused_before_anything_moves(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool")
    source = received(spool)
    with pytest.raises(InvalidUIDError):
        spool.adopt(source, "../../outside", "1.2")
    assert not (tmp_path / "outside").exists() and source.exists()


def test_failed_move_leaves_no_final_file(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    (tmp_path / "1.2.3").write_text("a file where the study folder should be")
    with pytest.raises(OSError):
        spool.adopt(received(spool), "1.2.3", "1.2.3.4")
    assert not (tmp_path / "1.2.3" / "1.2.3.4.dcm").exists()


def test_stale_partial_receptions_are_purged(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    stale = received(spool)
    assert spool.purge_incoming(older_than_s=3600) == 0, "a reception in progress is left alone"
    assert spool.purge_incoming(older_than_s=-1) == 1 and not stale.exists()


def test_header_text_is_read_back_without_the_pixels(
    tmp_path: Path, rg1: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ds = pydicom.dcmread(rg1)
    ds.PatientID, ds.PatientName, ds.AccessionNumber = "ID-7", "Doe^Jane", ""
    ds.save_as(tmp_path / "one.dcm")
    text = read_spooled_text(tmp_path / "one.dcm", ("PatientID", "PatientName", "AccessionNumber", "IssuerOfPatientID"))
    assert text == {"PatientID": "ID-7", "PatientName": "Doe^Jane", "AccessionNumber": None, "IssuerOfPatientID": None}
    (tmp_path / "garbage.dcm").write_bytes(b"not DICOM, Doe^Jane")
    assert read_spooled_text(tmp_path / "garbage.dcm", ("PatientID",)) is None
    assert read_spooled_text(tmp_path / "gone.dcm", ("PatientID",)) is None
    assert read_spooled_text(None, ("PatientID",)) is None
    assert "Doe" not in caplog.text, "a failure is logged by its type only"
