"""worker.encode.sr: the SR built around a stand-in root (without highdicom's deep copy and re-parse of the content
tree) is byte for byte the SR highdicom's own path makes, apart from the dates and times read from the clock, for
every encode case, with segmentations as evidence, with a predecessor, and for a "not performed" SR."""

from __future__ import annotations

from collections.abc import Callable
from io import BytesIO
from pathlib import Path

import pydicom
import pytest
from pydicom.dataset import Dataset

from config.settings import EquipmentSettings
from models.baseline import BaselineDetector
from tests.helpers.encode_cases import CASES, analysed, case_sources, context
from worker.encode import sr as sr_module
from worker.encode.bundle import encode_study
from worker.encode.sr import build_not_performed_sr

TIMES = ("InstanceCreation", "Content", "Series")


def as_bytes(dataset: Dataset) -> bytes:
    """The file as written, with the dates and times set from the clock blanked (creation, and each contribution's)."""
    for prefix in TIMES:
        for keyword in (f"{prefix}Date", f"{prefix}Time"):
            if keyword in dataset:
                setattr(dataset, keyword, "")
    for contribution in dataset.get("ContributingEquipmentSequence", []):
        if "ContributionDateTime" in contribution:
            contribution.ContributionDateTime = ""
    buffer = BytesIO()
    dataset.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def both_ways(build: Callable[[], Dataset], monkeypatch: pytest.MonkeyPatch) -> tuple[bytes, bytes]:
    ours = as_bytes(build())
    with monkeypatch.context() as patched:
        patched.setattr(sr_module, "_stand_in", lambda root: root)  # highdicom's own path: copy and parse the tree
        theirs = as_bytes(build())
    return ours, theirs


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("segmentations", [False, True])
def test_the_sr_is_the_same_bytes_as_highdicoms_own_path(
    case: str, segmentations: bool, rg1: Path, rg1_j2ki: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    encode_context = context(analysed(case_sources(case, rg1, rg1_j2ki)), segmentations=segmentations)
    ours, theirs = both_ways(lambda: encode_study(encode_context)[0].dataset, monkeypatch)
    assert ours == theirs
    document = pydicom.dcmread(BytesIO(ours))
    assert document.SOPClassUID == "1.2.840.10008.5.1.4.1.1.88.34" and len(document.ContentSequence) > 3


def test_a_superseding_and_a_not_performed_sr_are_the_same_bytes_too(
    rg1: Path, rg1_j2ki: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sources = case_sources("two-image-study", rg1, rg1_j2ki)
    earlier = encode_study(context(analysed(sources[:1])))[0].dataset
    ours, theirs = both_ways(lambda: encode_study(context(analysed(sources)), [earlier])[0].dataset, monkeypatch)
    assert ours == theirs
    assert "PredecessorDocumentsSequence" in pydicom.dcmread(BytesIO(ours))
    provenance = BaselineDetector().provenance
    ours, theirs = both_ways(
        lambda: build_not_performed_sr(sources, "no frontal view", provenance, EquipmentSettings()), monkeypatch
    )
    assert ours == theirs
