from __future__ import annotations

from pathlib import Path

import pytest

from dicom_node.spool import InvalidUIDError, Spool, is_valid_uid


@pytest.mark.parametrize(
    "uid,valid",
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


def test_store_is_atomic_and_leaves_no_temporary_files(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    path = spool.store("1.2.3", "1.2.3.4", b"DICM" * 10)
    assert path == tmp_path / "1.2.3" / "1.2.3.4.dcm"
    assert path.read_bytes() == b"DICM" * 10
    assert list(spool.incoming.iterdir()) == []


def test_path_traversal_is_refused_before_any_write(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool")
    with pytest.raises(InvalidUIDError):
        spool.store("../../outside", "1.2", b"x")
    assert not (tmp_path / "outside").exists()
    assert [p.name for p in (tmp_path / "spool").iterdir()] == [".incoming"]


def test_failed_write_leaves_nothing(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    (tmp_path / "1.2.3").write_text("a file where the study folder should be")
    with pytest.raises(OSError):
        spool.store("1.2.3", "1.2.3.4", b"data")
    assert list(spool.incoming.iterdir()) == []
