"""worker.encode.sr read by OHIF's own code: every boxed finding of RG1, RG1 JPEG 2000 lossy, a DX image and a
two-image study comes out of @cornerstonejs/adapters' TID 1500 loader and OHIF's read-only SR checks with our label,
our box and our image; planted mutations of the SR show that the test fails when OHIF could not show it."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path

import pydicom
import pytest

from tests.helpers.encode_cases import CASES, analysed, case_sources, context
from tests.helpers.ohif import Expected, ohif_problems, read_with_ohif
from worker.encode.bundle import encode_study
from worker.encode.inputs import AnalysedImage


def encoded(
    case: str, rg1: Path, rg1_j2ki: Path, segmentations: bool = False
) -> tuple[pydicom.Dataset, list[AnalysedImage]]:
    images = analysed(case_sources(case, rg1, rg1_j2ki))
    (sr,) = [o.dataset for o in encode_study(context(images, segmentations=segmentations)) if o.kind.value == "SR"]
    return sr, images


def expected(images: list[AnalysedImage]) -> list[Expected]:
    return [
        Expected(f.label, str(i.source.SOPInstanceUID), f.box.as_tuple())
        for i in images
        for f in i.result.findings
        if f.box is not None
    ]


def shown_by_ohif(sr: pydicom.Dataset, images: list[AnalysedImage], tmp_path: Path) -> list[str]:
    path = tmp_path / "sr.dcm"
    sr.save_as(path, enforce_file_format=True)
    source = images[0].source
    return ohif_problems(read_with_ohif(path, int(source.Rows), int(source.Columns)), expected(images))


@pytest.mark.parametrize("segmentations", [False, True], ids=["sr", "sr-naming-seg"])
@pytest.mark.parametrize("case", CASES)
def test_ohif_shows_every_boxed_finding_with_our_label_box_and_image(
    case: str, segmentations: bool, rg1: Path, rg1_j2ki: Path, tmp_path: Path
) -> None:
    """With a SEG, each finding has a second group naming its segment (same tracking UID): still one measurement."""
    sr, images = encoded(case, rg1, rg1_j2ki, segmentations)
    assert expected(images), "the case has boxed findings to show"
    assert shown_by_ohif(sr, images, tmp_path) == []


def _groups(sr: pydicom.Dataset) -> list[pydicom.Dataset]:
    container = next(i for i in sr.ContentSequence if i.ConceptNameCodeSequence[0].CodeValue == "126010")
    return list(container.ContentSequence)


def without_tracking_uid(sr: pydicom.Dataset) -> None:
    for group in _groups(sr):
        group.ContentSequence = [i for i in group.ContentSequence if i.ValueType != "UIDREF"]


def without_region_under_the_measurement(sr: pydicom.Dataset) -> None:
    for group in _groups(sr):
        for item in group.ContentSequence:
            if item.ValueType == "NUM":
                item.ContentSequence = [i for i in item.get("ContentSequence", []) if i.ValueType != "SCOORD"]


def region_on_another_image(sr: pydicom.Dataset) -> None:
    for group in _groups(sr):
        for item in group.ContentSequence:
            if item.ValueType == "SCOORD":
                item.ContentSequence[0].ReferencedSOPSequence[0].ReferencedSOPInstanceUID = "1.2.3.4"


@pytest.mark.parametrize(
    ("mutation", "says"),
    [
        (without_tracking_uid, "no Tracking Unique Identifier"),
        (without_region_under_the_measurement, "hydrated: 0 measurements"),
        (region_on_another_image, "readOnly: Nodule at"),
    ],
)
def test_a_planted_mutation_fails_the_check(
    mutation: Callable[[pydicom.Dataset], None], says: str, rg1: Path, rg1_j2ki: Path, tmp_path: Path
) -> None:
    sr, images = encoded("rg1", rg1, rg1_j2ki)
    broken = copy.deepcopy(sr)
    mutation(broken)
    problems = shown_by_ohif(broken, images, tmp_path)
    assert any(says in problem for problem in problems), problems
