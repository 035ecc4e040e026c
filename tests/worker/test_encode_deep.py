"""worker.encode: result objects from the deep-learning backends: many labels, Grad-CAM heat on the overlay, image-level
findings.

The weights are random (tests/helpers/weights.py), so the findings mean nothing; the objects must still be valid.
"""

from __future__ import annotations

from pathlib import Path

import pydicom
import pytest

from config.settings import EquipmentSettings, ResultsSettings
from models.codes import FINDING_CODES, FINDING_SITES, FindingLabel
from models.imaging import decode_dataset
from models.protocol import Box, DetectorOptions, Finding, ImageResult
from models.registry import load_detector
from tests.helpers.encode_cases import content_items, write_all
from tests.helpers.peers import dciodvfy_errors, pixelmed_sr_errors
from tests.helpers.weights import write_xrv_weights
from worker.encode.bundle import encode_study
from worker.encode.inputs import AnalysedImage, EncodeContext


@pytest.fixture(scope="module")
def xrv_objects(rg1: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[Path]]:
    weights = tmp_path_factory.mktemp("weights")
    write_xrv_weights("densenet121-res224-all", weights)
    detector = load_detector("xrv:densenet121-res224-all", DetectorOptions(weights_dir=weights, device="cpu"))
    source = pydicom.dcmread(rg1)
    decoded = decode_dataset(source)
    (result,) = detector.detect([decoded])
    assert len(result.findings) >= 10 and result.heatmap is not None
    # One finding without a location, as the two-stage backend reports a label its detector did not box.
    located = result.findings[0]
    result = ImageResult(
        result.abnormality_score,
        (*result.findings, Finding("Cardiomegaly", 0.7, None)) if located.label != "Cardiomegaly" else result.findings,
        result.heatmap,
    )
    context = EncodeContext(
        images=[AnalysedImage(source, decoded, result)],
        provenance=detector.provenance,
        equipment=EquipmentSettings(),
        results=ResultsSettings(),
    )
    return write_all(encode_study(context), tmp_path_factory.mktemp("xrv-objects"))


def test_xrv_objects_validate(xrv_objects: dict[str, list[Path]]) -> None:
    for path in [p for group in xrv_objects.values() for p in group]:
        assert dciodvfy_errors(path) == [], path
    assert pixelmed_sr_errors(xrv_objects["SR"][0]) == []


def test_the_sr_names_the_algorithm_and_its_weights(xrv_objects: dict[str, list[Path]]) -> None:
    items = content_items(pydicom.dcmread(xrv_objects["SR"][0]).ContentSequence)
    texts = {i.TextValue for i in items if i.ValueType == "TEXT"}
    assert "torchxrayvision densenet121-res224-all" in texts
    assert any(t.startswith("weights_sha256=") and len(t) == 15 + 64 for t in texts), "the weights' sha256"


def test_a_report_with_one_located_finding_validates(rg1: Path, tmp_path: Path) -> None:
    """One TID 1410 group beside TID 1501 groups: valid DICOM that trips a PixelMed rule (tests/helpers/peers.py)."""
    source = pydicom.dcmread(rg1)
    decoded = decode_dataset(source)
    (result,) = load_detector("baseline").detect([decoded])
    located = next(f for f in result.findings if f.box is not None)
    single = ImageResult(result.abnormality_score, (located, Finding("Cardiomegaly", 0.7, None)))
    context = EncodeContext(
        images=[AnalysedImage(source, decoded, single)],
        provenance=load_detector("baseline").provenance,
        equipment=EquipmentSettings(),
        results=ResultsSettings(),
    )
    (report,) = write_all(encode_study(context), tmp_path)["SR"]
    assert dciodvfy_errors(report) == []
    assert pixelmed_sr_errors(report) == []


def test_other_errors_in_a_one_region_report_still_fail(rg1: Path, tmp_path: Path) -> None:
    """Only that PixelMed pattern is dismissed: a region that lost its source image is still an error."""
    source = pydicom.dcmread(rg1)
    decoded = decode_dataset(source)
    (result,) = load_detector("baseline").detect([decoded])
    located = next(f for f in result.findings if f.box is not None)
    context = EncodeContext(
        images=[AnalysedImage(source, decoded, ImageResult(result.abnormality_score, (located,)))],
        provenance=load_detector("baseline").provenance,
        equipment=EquipmentSettings(),
        results=ResultsSettings(),
    )
    (report,) = write_all(encode_study(context), tmp_path)["SR"]
    broken = pydicom.dcmread(report)
    (region,) = [
        item for item in broken.ContentSequence[-1].ContentSequence[0].ContentSequence if item.ValueType == "SCOORD"
    ]
    del region.ContentSequence
    broken.save_as(tmp_path / "broken.dcm")
    assert any("Image Region" in error for error in pixelmed_sr_errors(tmp_path / "broken.dcm"))


def test_every_label_in_the_code_table_makes_a_valid_sr(rg1: Path, tmp_path: Path) -> None:
    """Each label once with a box and once on the whole image: the coded finding and site of every row validate."""
    source = pydicom.dcmread(rg1)
    decoded = decode_dataset(source)
    labels = list(FindingLabel)
    boxed = [
        Finding(label.value, 0.9, Box(100.0 + 40 * i, 200.0, 180.0 + 40 * i, 300.0)) for i, label in enumerate(labels)
    ]
    whole = [Finding(label.value, 0.8, None) for label in labels]
    context = EncodeContext(
        images=[AnalysedImage(source, decoded, ImageResult(0.9, (*boxed, *whole)))],
        provenance=load_detector("baseline").provenance,
        equipment=EquipmentSettings(),
        results=ResultsSettings(),
    )
    (report,) = write_all(encode_study(context), tmp_path)["SR"]
    assert dciodvfy_errors(report) == []
    assert pixelmed_sr_errors(report) == []
    (measurements,) = [
        i
        for i in content_items(pydicom.dcmread(report).ContentSequence)
        if i.ConceptNameCodeSequence[0].CodeValue == "126010"
    ]
    stated = []
    for group in measurements.ContentSequence[:-1]:  # the last group is the overall result
        # TID 1501/1410 state the finding type first; the qualitative evaluation "Finding: Present" comes later.
        coded = [
            (i.ConceptNameCodeSequence[0].CodeValue, i.ConceptCodeSequence[0].CodeValue)
            for i in group.ContentSequence
            if i.ValueType == "CODE"
        ]
        finding = next(value for name, value in coded if name == "121071")
        site = next(value for name, value in coded if name == "363698007")
        (tracking,) = [
            i.TextValue
            for i in group.ContentSequence
            if i.ValueType == "TEXT" and i.ConceptNameCodeSequence[0].CodeValue == "112039"
        ]
        stated.append((finding, site, tracking.split(": ", 1)[1]))
    expected = [(FINDING_CODES[label].value, FINDING_SITES[label].value, label.value) for label in labels] * 2
    assert stated == expected, "each group's code pair, and its tracking identifier names the model's label"
