"""models.registry and worker.encode with a site's thresholds: the baseline applies them per label, every SR states
them and the date they were set (TID 4019 Algorithm Parameters), and other thresholds make other objects."""

from __future__ import annotations

from pathlib import Path

import pydicom
import pytest

from config.outputs import UrgencySettings
from config.settings import EquipmentSettings, ResultsSettings
from models.imaging import decode_dataset
from models.protocol import DetectorOptions
from models.registry import load_detector
from tests.helpers.encode_cases import content_items
from worker.encode.bundle import encode_study
from worker.encode.inputs import AnalysedImage, EncodeContext


def encoded_sr(rg1: Path, options: DetectorOptions) -> tuple[pydicom.Dataset, int]:
    detector = load_detector("baseline", options)
    source = pydicom.dcmread(rg1)
    decoded = decode_dataset(source)
    (result,) = detector.detect([decoded])
    context = EncodeContext(
        images=[AnalysedImage(source, decoded, result)],
        provenance=detector.provenance,
        equipment=EquipmentSettings(),
        results=ResultsSettings(),
        urgency=UrgencySettings(),
    )
    (sr,) = [o.dataset for o in encode_study(context) if o.kind.value == "SR"]
    return sr, len(result.findings)


def parameters(sr: pydicom.Dataset) -> list[str]:
    return [
        str(i.TextValue)
        for i in content_items(sr.ContentSequence)
        if i.ConceptNameCodeSequence[0].CodeValue == "111002"
    ]


def test_every_sr_states_the_site_thresholds_and_their_date(rg1: Path) -> None:
    plain, found = encoded_sr(rg1, DetectorOptions())
    assert not any(p.startswith("site thresholds") for p in parameters(plain))
    sited, more = encoded_sr(rg1, DetectorOptions(thresholds={"Nodule": 0.2, "Mass": 0.2}, thresholds_set="2026-12-03"))
    assert "site thresholds=Mass=0.2, Nodule=0.2" in parameters(sited)
    assert "site thresholds set=2026-12-03" in parameters(sited)
    assert more > found, "lower thresholds report more"
    assert sited.SOPInstanceUID != plain.SOPInstanceUID, "other thresholds, another object"
    again, _ = encoded_sr(rg1, DetectorOptions(thresholds={"Nodule": 0.2, "Mass": 0.2}, thresholds_set="2026-12-03"))
    assert again.SOPInstanceUID == sited.SOPInstanceUID, "the same thresholds, the same object"


def test_the_baseline_applies_each_label_its_own_threshold(rg1: Path) -> None:
    decoded = decode_dataset(pydicom.dcmread(rg1))
    low = load_detector("baseline", DetectorOptions(thresholds={"Nodule": 0.0, "Mass": 0.0})).detect([decoded])[0]
    only_masses = load_detector("baseline", DetectorOptions(thresholds={"Nodule": 1.01, "Mass": 0.0})).detect(
        [decoded]
    )[0]
    assert {f.label for f in only_masses.findings} <= {"Mass"}
    assert len(only_masses.findings) == min(8, sum(f.label == "Mass" for f in low.candidates))
    with pytest.raises(ValueError, match="the baseline reports Nodule, Mass"):
        load_detector("baseline", DetectorOptions(thresholds={"Pneumothorax": 0.5}))
