"""Urgency: one word per analysed study that says how soon a person must look at it.

``critical`` when a finding's label has a critical threshold and its probability reaches it; ``abnormal`` when the
detector reports anything (a finding, or an abnormality score at its own threshold); ``no_finding`` otherwise; and
``not_performed`` when the study could not be analysed. A finding must be reported to count: a critical threshold
below the model's own reporting threshold for that label changes nothing.

The codes that carry it out of the node (SR, HL7, FHIR) sit beside it, with their sources:

- [sct-priority] SNOMED CT 394849002 "High priority" and 394848005 "Normal priority", the values of the SNOMED CT
  concept 260870009 "Priority (attribute)" (both listed in HL7 FHIR R4's SNOMED CT priority value sets);
- [cid222] DICOM PS3.16 CID 222 "Normality": SNOMED CT 263654008 "Abnormal", 17621005 "Normal",
  371934000 "Normality undetermined", under the concept name DCM 121402 "Normality";
- [hl7-0078] HL7 v2 table 0078 (Interpretation Codes): AA critically abnormal, A abnormal, N normal.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from models.codes import CodedConcept, FindingLabel, UnknownLabelError

if TYPE_CHECKING:  # kept light: the start-up check of every command imports this module
    from models.protocol import ImageResult

DEFAULT_CRITICAL_THRESHOLDS: dict[str, float] = {FindingLabel.PNEUMOTHORAX.value: 0.5}


class Urgency(enum.StrEnum):
    CRITICAL = "critical"
    ABNORMAL = "abnormal"
    NO_FINDING = "no_finding"
    NOT_PERFORMED = "not_performed"


PRIORITY = CodedConcept("SCT", "260870009", "Priority")  # [sct-priority]
HIGH_PRIORITY = CodedConcept("SCT", "394849002", "High priority")  # [sct-priority]
NORMAL_PRIORITY = CodedConcept("SCT", "394848005", "Normal priority")  # [sct-priority]
NORMALITY = CodedConcept("DCM", "121402", "Normality")  # [cid222]
ABNORMAL = CodedConcept("SCT", "263654008", "Abnormal")  # [cid222]
NORMAL = CodedConcept("SCT", "17621005", "Normal")  # [cid222]
NORMALITY_UNDETERMINED = CodedConcept("SCT", "371934000", "Normality Undetermined")  # [cid222]

NORMALITY_OF: dict[Urgency, CodedConcept] = {
    Urgency.CRITICAL: ABNORMAL,
    Urgency.ABNORMAL: ABNORMAL,
    Urgency.NO_FINDING: NORMAL,
    Urgency.NOT_PERFORMED: NORMALITY_UNDETERMINED,
}
PRIORITY_OF: dict[Urgency, CodedConcept] = {
    Urgency.CRITICAL: HIGH_PRIORITY,
    Urgency.ABNORMAL: NORMAL_PRIORITY,
    Urgency.NO_FINDING: NORMAL_PRIORITY,
    Urgency.NOT_PERFORMED: NORMAL_PRIORITY,
}
HL7_ABNORMAL_FLAG: dict[Urgency, str] = {  # [hl7-0078]
    Urgency.CRITICAL: "AA",
    Urgency.ABNORMAL: "A",
    Urgency.NO_FINDING: "N",
    Urgency.NOT_PERFORMED: "",
}


@dataclass(frozen=True)
class Triage:
    urgency: Urgency
    critical_labels: tuple[str, ...] = ()
    """The labels that made the study critical, in the order first found."""

    @property
    def alert(self) -> str | None:
        """The line shown on the overlay and the GSPS: "CRITICAL: Pneumothorax"; None unless critical."""
        return f"CRITICAL: {', '.join(self.critical_labels)}" if self.critical_labels else None


def check_labels(thresholds: Mapping[str, float]) -> None:
    """Every configured label must be one the code table knows (a typo would silently never fire)."""
    known = {label.value for label in FindingLabel}
    unknown = sorted(set(thresholds) - known)
    if unknown:
        raise UnknownLabelError(
            f"unknown label(s) in urgency.critical_thresholds: {', '.join(unknown)} (known: {', '.join(sorted(known))})"
        )


def is_critical(label: str, probability: float, thresholds: Mapping[str, float]) -> bool:
    threshold = thresholds.get(label)
    return threshold is not None and probability >= threshold


def triage(results: Sequence[ImageResult], thresholds: Mapping[str, float], abnormal_threshold: float) -> Triage:
    """The urgency of one analysed study from its images' results."""
    critical = _unique(
        f.label for result in results for f in result.findings if is_critical(f.label, f.probability, thresholds)
    )
    if critical:
        return Triage(Urgency.CRITICAL, critical)
    if any(result.findings or result.abnormality_score >= abnormal_threshold for result in results):
        return Triage(Urgency.ABNORMAL)
    return Triage(Urgency.NO_FINDING)


def _unique(labels: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(labels))
