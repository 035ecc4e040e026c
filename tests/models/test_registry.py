"""models.registry: detector names, loading and caching."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pytest

from models import registry
from models.baseline import BaselineDetector
from models.codes import UnknownLabelError, require_known_labels
from models.imaging import DecodedImage
from models.protocol import DetectorOptions, ImageResult, Provenance
from models.registry import UnknownDetectorError, load_detector


def test_baseline_is_loaded_once_with_provenance() -> None:
    detector = load_detector("baseline")
    assert load_detector("baseline") is detector
    assert detector.provenance.name == "baseline" and detector.provenance.version
    require_known_labels(detector.labels)


def test_unknown_detector_names_the_available_ones() -> None:
    with pytest.raises(UnknownDetectorError, match="baseline"):
        load_detector("nonesuch")


@dataclass
class UncodedLabelDetector:
    """A backend whose checkpoint declares a label the code table does not know."""

    labels: tuple[str, ...] = ("Nodule", "Unicorn")
    provenance: Provenance = field(default_factory=lambda: BaselineDetector().provenance)
    abnormal_threshold: float = 0.5

    def detect(self, images: Sequence[DecodedImage]) -> list[ImageResult]:
        raise AssertionError("never reached: the label stops the load")


def test_a_detector_with_an_uncoded_label_fails_at_load(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(registry._FACTORIES, "uncoded", lambda _argument, _options: UncodedLabelDetector())
    with pytest.raises(UnknownLabelError, match="'Unicorn' has no code"):
        load_detector("uncoded:any", DetectorOptions())
    assert not any(key[0] == "uncoded:any" for key in registry._loaded), "nothing half-loaded is kept"
