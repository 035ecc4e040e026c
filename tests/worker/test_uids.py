"""worker.encode.uids: deterministic result UIDs."""

from __future__ import annotations

from dicom_node.spool import is_valid_uid
from worker.encode.uids import UIDKind, derive_uid


def test_same_inputs_same_uid_and_valid() -> None:
    uid = derive_uid(UIDKind.SR_INSTANCE, "1.2.3", "baseline:0.1.0:-")
    assert uid == derive_uid(UIDKind.SR_INSTANCE, "1.2.3", "baseline:0.1.0:-")
    assert uid.startswith("2.25.") and is_valid_uid(str(uid)) and uid.is_valid


def test_kind_model_and_boundaries_change_the_uid() -> None:
    base = derive_uid(UIDKind.SC_INSTANCE, "1.2.3", "baseline:0.1.0:-")
    assert base != derive_uid(UIDKind.GSPS_INSTANCE, "1.2.3", "baseline:0.1.0:-")
    assert base != derive_uid(UIDKind.SC_INSTANCE, "1.2.3", "baseline:0.2.0:-")
    assert derive_uid(UIDKind.TRACKING, "ab", "c") != derive_uid(UIDKind.TRACKING, "a", "bc")
