"""models.urgency and its place in worker.encode: each study's urgency, coded in the SR (DICOM CID 222 Normality and
SNOMED CT Priority, both validated), and "CRITICAL: <labels>" on the overlay SC and the GSPS."""

from __future__ import annotations

from pathlib import Path

import pydicom
import pytest

from config.outputs import UrgencySettings
from db.models import Urgency as RecordedUrgency
from models.codes import FindingLabel
from models.protocol import Box, Finding, ImageResult
from models.urgency import Urgency, check_labels, triage
from tests.helpers.encode_cases import analysed, content_items, context, write_all
from tests.helpers.peers import dciodvfy_errors, pixelmed_sr_errors
from worker.encode.bundle import encode_not_performed, encode_study

NORMALITY, PRIORITY = "121402", "260870009"
CRITICAL_NODULE = UrgencySettings(critical_thresholds={"Nodule": 0.8})


def result(*findings: tuple[str, float], score: float = 0.0) -> ImageResult:
    box = Box(10, 10, 50, 50)
    return ImageResult(abnormality_score=score, findings=tuple(Finding(label, p, box) for label, p in findings))


@pytest.mark.parametrize(
    ("results", "expected", "labels"),
    [
        ([result(("Pneumothorax", 0.7))], Urgency.CRITICAL, ("Pneumothorax",)),
        ([result(("Pneumothorax", 0.4))], Urgency.ABNORMAL, ()),
        ([result(("Nodule", 0.9), ("Mass", 0.6))], Urgency.ABNORMAL, ()),
        ([result(score=0.7)], Urgency.ABNORMAL, ()),
        ([result(score=0.2), result(("Pneumothorax", 0.5))], Urgency.CRITICAL, ("Pneumothorax",)),
        ([result(score=0.2)], Urgency.NO_FINDING, ()),
    ],
)
def test_triage_by_the_default_thresholds(
    results: list[ImageResult], expected: Urgency, labels: tuple[str, ...]
) -> None:
    found = triage(results, UrgencySettings().critical_thresholds, abnormal_threshold=0.5)
    assert (found.urgency, found.critical_labels) == (expected, labels)


def test_any_label_may_be_made_critical_and_a_typo_is_refused() -> None:
    found = triage([result(("Effusion", 0.6), ("Nodule", 0.95))], {"Effusion": 0.5, "Nodule": 0.9}, 0.5)
    assert found.critical_labels == ("Effusion", "Nodule") and found.alert == "CRITICAL: Effusion, Nodule"
    check_labels({label.value: 0.5 for label in FindingLabel})
    with pytest.raises(ValueError, match="Pnuemothorax"):
        check_labels({"Pnuemothorax": 0.5})


def test_the_recorded_urgency_is_the_same_enum() -> None:
    assert [u.value for u in RecordedUrgency] == [u.value for u in Urgency]


def _coded(path: Path) -> dict[str, str]:
    items = content_items(pydicom.dcmread(path).ContentSequence)
    return {
        i.ConceptNameCodeSequence[0].CodeValue: i.ConceptCodeSequence[0].CodeValue
        for i in items
        if i.ValueType == "CODE"
    }


def test_a_critical_study_is_coded_in_the_sr_and_shown_on_sc_and_gsps(rg1: Path, tmp_path: Path) -> None:
    objects = encode_study(context(analysed([pydicom.dcmread(rg1)]), urgency=CRITICAL_NODULE))
    paths = write_all(objects, tmp_path)
    for path in [p for group in paths.values() for p in group]:
        assert dciodvfy_errors(path) == [], path
    assert pixelmed_sr_errors(paths["SR"][0]) == []
    coded = _coded(paths["SR"][0])
    assert (coded[NORMALITY], coded[PRIORITY]) == ("263654008", "394849002"), "Abnormal, High priority"
    sc, gsps = pydicom.dcmread(paths["SC"][0]), pydicom.dcmread(paths["GSPS"][0])
    assert sc.ImageComments.startswith("CRITICAL: Nodule")
    texts = [t.UnformattedTextValue for a in gsps.GraphicAnnotationSequence for t in a.get("TextObjectSequence", [])]
    assert any(t.startswith("CRITICAL: Nodule") for t in texts)


def test_an_abnormal_study_says_abnormal_with_normal_priority_and_no_alert(rg1: Path, tmp_path: Path) -> None:
    paths = write_all(encode_study(context(analysed([pydicom.dcmread(rg1)]))), tmp_path)
    coded = _coded(paths["SR"][0])
    assert (coded[NORMALITY], coded[PRIORITY]) == ("263654008", "394848005")
    assert "CRITICAL" not in pydicom.dcmread(paths["SC"][0]).ImageComments


def test_a_not_performed_sr_says_normality_undetermined(rg1: Path, tmp_path: Path) -> None:
    source = pydicom.dcmread(rg1, stop_before_pixels=True)
    obj = encode_not_performed([source], "pixel data cannot be decoded", context([]).provenance, context([]).equipment)
    path = obj.write(tmp_path)
    assert dciodvfy_errors(path) == [] and pixelmed_sr_errors(path) == []
    assert _coded(path)[NORMALITY] == "371934000"
