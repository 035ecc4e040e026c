"""What an encoder is given: the analysed images of one study, the model's provenance and the settings."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pydicom.dataset import Dataset

from config.outputs import UrgencySettings
from config.settings import EquipmentSettings, ResultsSettings
from models.imaging import DecodedImage
from models.protocol import ImageResult, Provenance
from models.urgency import Triage, triage
from worker.encode.banner import banner_for
from worker.encode.uids import source_token


@dataclass(frozen=True)
class AnalysedImage:
    """One source image with its decoded pixels and the detector's result for it."""

    source: Dataset
    """The source header (pixel data not needed)."""
    decoded: DecodedImage
    result: ImageResult
    revision: int = 1
    """The source instance's revision (``db.studies``): a corrected image gives new result UIDs."""
    generation: int = 0
    """How many of the study's jobs were retracted: results made after a retraction get new UIDs."""

    @property
    def token(self) -> str:
        return source_token(str(self.source.SOPInstanceUID), self.revision, self.generation)


def finding_identifier(number: int, label: str) -> str:
    """The Tracking Identifier of a finding: its number in the study and the detector's own label."""
    return f"Finding {number + 1}: {label}"


@dataclass(frozen=True)
class EncodeContext:
    """The study-level inputs shared by all three objects."""

    images: Sequence[AnalysedImage]
    provenance: Provenance
    equipment: EquipmentSettings
    results: ResultsSettings = field(default_factory=ResultsSettings)
    urgency: UrgencySettings = field(default_factory=UrgencySettings)
    study_inputs: Sequence[str] = ()
    """Every instance of the study the job looked at (SOP Instance UIDs), analysed or not: the SR's identity follows
    this set, so a study that gained an image (a lateral after the PA) gets a new SR that supersedes the first."""
    segmentations: bool = False
    """Make a SEG per image with a boxed finding (a destination asks for SEG), and reference it from the SR."""

    def finding_number(self, image: AnalysedImage, finding_index: int) -> int:
        """The finding's index in the study (0-based; images in order, then their findings): the SR's groups and the
        SEG's segments are named by it ("Finding 3: Mass")."""
        offset = 0
        for other in self.images:
            if other is image:
                return offset + finding_index
            offset += len(other.result.findings)
        raise ValueError("the image is not one of this study's")

    def made_by(self) -> dict[str, Any]:
        """The equipment and content arguments highdicom's GSPS and SEG constructors share: our equipment, the
        model's version as the software, and the AI_FINDINGS content label."""
        return {
            "manufacturer": self.equipment.manufacturer,
            "manufacturer_model_name": self.equipment.model_name,
            "software_versions": self.provenance.version,
            "device_serial_number": self.equipment.device_serial_number,
            "institution_name": self.equipment.institution_name,
            "content_label": "AI_FINDINGS",
            "content_description": f"{self.provenance.name} {self.provenance.version}"[:64],
        }

    @property
    def study_instance_uid(self) -> str:
        return str(self.images[0].source.StudyInstanceUID)

    @property
    def input_uids(self) -> list[str]:
        """The set the SR's UID derives from: the study's inputs, or the analysed images when none were given."""
        return list(self.study_inputs) or [i.token for i in self.images]

    @property
    def banner(self) -> str:
        return banner_for(self.provenance)

    @property
    def triage(self) -> Triage:
        """The study's urgency; "abnormal" follows the model's own threshold, as the SR's overall result does."""
        abnormal_threshold = float(self.provenance.parameters.get("threshold", "0.5"))
        return triage([i.result for i in self.images], self.urgency.critical_thresholds, abnormal_threshold)

    @property
    def alert_banner(self) -> str:
        """The banner burned into the overlay and drawn by the GSPS: "CRITICAL: <labels>" first when it applies."""
        alert = self.triage.alert
        return f"{alert} \u2013 {self.banner}" if alert else self.banner
