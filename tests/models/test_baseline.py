"""models.baseline: the weight-free detector's findings on RG1 and RG3."""

from __future__ import annotations

import copy
import math
from pathlib import Path

import numpy as np
import pydicom
import pytest

from models.baseline import BaselineDetector, BaselineParameters, lung_field_mask
from models.codes import FindingLabel
from models.imaging import DecodedImage, decode_dataset, decode_file
from models.preprocess import clahe, resize_long_side, to_uint8


def test_rg1_is_abnormal_with_boxes_inside_the_lung_fields(rg1: Path) -> None:
    image = decode_file(rg1)
    result = BaselineDetector().detect([image])[0]
    assert result.abnormality_score >= 0.5
    assert len(result.findings) >= 3, "RG1 shows several round opacities"
    small, resize = resize_long_side(image.pixels, 512)
    mask = lung_field_mask(clahe(to_uint8(small)))
    for finding in result.findings:
        assert finding.label in {FindingLabel.NODULE, FindingLabel.MASS}
        assert 0.0 <= finding.probability <= 1.0
        assert finding.box is not None and finding.box.inside(1955, 1841)
        centre_x = (finding.box.x_min + finding.box.x_max) / 2 * resize.scale
        centre_y = (finding.box.y_min + finding.box.y_max) / 2 * resize.scale
        assert mask[int(centre_y), int(centre_x)] == 1, f"{finding} is not centred in a lung field"
        # Not on the background or the shoulders: below the top tenth and away from the lateral edges.
        assert finding.box.y_min > 0.1 * 1955
        assert finding.box.x_min > 0.05 * 1841 and finding.box.x_max < 0.95 * 1841


def test_findings_are_deterministic_and_identical_for_lossless_j2k(rg1: Path, rg1_j2kr: Path) -> None:
    detector = BaselineDetector()
    first = detector.detect([decode_file(rg1)])[0]
    again = detector.detect([decode_file(rg1)])[0]
    j2k = detector.detect([decode_file(rg1_j2kr)])[0]
    assert first == again == j2k


@pytest.mark.parametrize("name", ["rg1", "rg1_j2ki"])
def test_wide_scales_at_half_resolution_find_what_every_scale_in_full_found(
    name: str, request: pytest.FixtureRequest
) -> None:
    """Version 0.2.0 against 0.1.0 (every scale of the Laplacian of Gaussian at the working size)."""
    image = decode_file(request.getfixturevalue(name))
    halved = BaselineDetector().detect([image])[0]
    full = BaselineDetector(BaselineParameters(half_resolution_from_sigma=math.inf)).detect([image])[0]
    assert len(full.findings) == len(halved.findings) >= 3
    assert halved.abnormality_score == pytest.approx(full.abnormality_score, abs=0.03)
    for before in full.findings:  # in order of probability, which close ones may swap
        assert before.box is not None
        after = max(halved.findings, key=lambda f: f.box.iou(before.box) if f.box else 0.0)
        assert after.box is not None and after.box.iou(before.box) >= 0.9
        assert after.label == before.label and after.probability == pytest.approx(before.probability, abs=0.03)


def test_lossy_j2k_gives_overlapping_boxes(rg1: Path, rg1_j2ki: Path) -> None:
    detector = BaselineDetector()
    reference = detector.detect([decode_file(rg1)])[0].findings
    lossy = detector.detect([decode_file(rg1_j2ki)])[0].findings
    assert len(lossy) == len(reference)
    for a, b in zip(reference, lossy, strict=True):
        assert a.box is not None and b.box is not None and a.box.iou(b.box) >= 0.8


def test_monochrome2_conversion_gives_the_same_findings(rg1_dataset: pydicom.Dataset) -> None:
    mono2 = copy.deepcopy(rg1_dataset)
    stored = rg1_dataset.pixel_array
    top = 2**rg1_dataset.BitsStored - 1
    mono2.PixelData = (top - stored).astype(np.uint16).tobytes()
    mono2.PhotometricInterpretation = "MONOCHROME2"
    mono2.WindowCenter = top - float(rg1_dataset.WindowCenter)
    detector = BaselineDetector()
    assert detector.detect([decode_dataset(mono2)]) == detector.detect([decode_dataset(rg1_dataset)])


def test_blank_image_has_no_findings() -> None:
    blank = DecodedImage(pixels=np.full((600, 500), 0.5, dtype=np.float32), spacing_mm=None)
    result = BaselineDetector().detect([blank])[0]
    assert result.findings == () and result.abnormality_score < 0.5
