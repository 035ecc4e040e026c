"""The one table from finding labels to coded concepts.

Every label a detector may emit must be here; a detector whose labels are missing fails at load, not at encode time.
Sources: SNOMED CT concept ids as checked in ``shared/dicom-outputs.md`` (validated with dciodvfy and PixelMed).
Cardiomegaly uses 8186001 (SNOMED CT "Cardiomegaly"); DICOM CID 12248 lists 287272002 instead, and we keep one.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class CodedConcept:
    scheme: str
    value: str
    meaning: str


class FindingLabel(enum.StrEnum):
    NODULE = "Nodule"
    MASS = "Mass"
    PNEUMOTHORAX = "Pneumothorax"
    EFFUSION = "Effusion"
    CONSOLIDATION = "Consolidation"
    CARDIOMEGALY = "Cardiomegaly"
    ATELECTASIS = "Atelectasis"


FINDING_CODES: dict[FindingLabel, CodedConcept] = {
    FindingLabel.NODULE: CodedConcept("SCT", "27925004", "Nodule"),
    FindingLabel.MASS: CodedConcept("SCT", "4147007", "Mass"),
    FindingLabel.PNEUMOTHORAX: CodedConcept("SCT", "36118008", "Pneumothorax"),
    FindingLabel.EFFUSION: CodedConcept("SCT", "60046008", "Pleural effusion"),
    FindingLabel.CONSOLIDATION: CodedConcept("SCT", "95436008", "Lung consolidation"),
    FindingLabel.CARDIOMEGALY: CodedConcept("SCT", "8186001", "Cardiomegaly"),
    FindingLabel.ATELECTASIS: CodedConcept("SCT", "46621007", "Atelectasis"),
}

# Where each finding lies (SNOMED CT body structures).
LUNG = CodedConcept("SCT", "39607008", "Lung")
HEART = CodedConcept("SCT", "80891009", "Heart")
PLEURA = CodedConcept("SCT", "3120008", "Pleura")

FINDING_SITES: dict[FindingLabel, CodedConcept] = {
    FindingLabel.NODULE: LUNG,
    FindingLabel.MASS: LUNG,
    FindingLabel.PNEUMOTHORAX: PLEURA,
    FindingLabel.EFFUSION: PLEURA,
    FindingLabel.CONSOLIDATION: LUNG,
    FindingLabel.CARDIOMEGALY: HEART,
    FindingLabel.ATELECTASIS: LUNG,
}


class UnknownLabelError(ValueError):
    """A detector declared a label that has no code in this table."""


def code_for(label: str) -> CodedConcept:
    try:
        return FINDING_CODES[FindingLabel(label)]
    except ValueError as exc:
        raise UnknownLabelError(f"finding label {label!r} has no code in models.codes") from exc


def site_for(label: str) -> CodedConcept:
    return FINDING_SITES[FindingLabel(label)]


def require_known_labels(labels: Iterable[str]) -> None:
    """Called when a detector loads, so a missing code stops the worker at start and not mid-study."""
    for label in labels:
        code_for(label)
