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
