from __future__ import annotations

import pytest

from models.codes import UnknownLabelError, code_for, require_known_labels
from models.registry import UnknownDetectorError, load_detector


def test_baseline_is_loaded_once_with_provenance() -> None:
    detector = load_detector("baseline")
    assert load_detector("baseline") is detector
    assert detector.provenance.name == "baseline" and detector.provenance.version
    require_known_labels(detector.labels)


def test_unknown_detector_names_the_available_ones() -> None:
    with pytest.raises(UnknownDetectorError, match="baseline"):
        load_detector("nonesuch")


def test_codes_come_from_the_table() -> None:
    assert (code_for("Nodule").scheme, code_for("Nodule").value) == ("SCT", "27925004")
    with pytest.raises(UnknownLabelError):
        code_for("Unicorn")


def test_every_public_model_label_is_coded_or_explicitly_unmapped() -> None:
    from models.codes import FINDING_CODES, FINDING_SITES, UNMAPPED, VINDR_LABELS, XRV_LABELS, FindingLabel

    assert len(XRV_LABELS) == 18 and len(VINDR_LABELS) == 14
    for name, label in {**XRV_LABELS, **VINDR_LABELS}.items():
        if label is None:
            assert name in UNMAPPED and UNMAPPED[name], name
        else:
            assert label in FINDING_CODES and label in FINDING_SITES, name
    assert set(FINDING_CODES) == set(FindingLabel) == set(FINDING_SITES)
    for code in FINDING_CODES.values():
        assert code.scheme in {"SCT", "DCM"} and code.value.isdigit() and code.meaning


def test_a_detector_with_an_unmapped_label_cannot_load() -> None:
    with pytest.raises(UnknownLabelError, match="Pleural_Thickening"):
        require_known_labels(["Nodule", "Pleural_Thickening"])
