"""What an encoder is given: the analysed images of one study, the model's provenance and the settings."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from pydicom.dataset import Dataset

from config.settings import EquipmentSettings, ResultsSettings
from models.imaging import DecodedImage
from models.protocol import ImageResult, Provenance
from worker.encode.banner import banner_for


@dataclass(frozen=True)
class AnalysedImage:
    """One source image with its decoded pixels and the detector's result for it."""

    source: Dataset
    """The source header (pixel data not needed)."""
    decoded: DecodedImage
    result: ImageResult


@dataclass(frozen=True)
class EncodeContext:
    """The study-level inputs shared by all three objects."""

    images: Sequence[AnalysedImage]
    provenance: Provenance
    equipment: EquipmentSettings
    results: ResultsSettings = field(default_factory=ResultsSettings)

    @property
    def study_instance_uid(self) -> str:
        return str(self.images[0].source.StudyInstanceUID)

    @property
    def banner(self) -> str:
        return banner_for(self.provenance)
