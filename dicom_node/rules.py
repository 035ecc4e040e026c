"""Eligibility: which studies and images the detector may analyse. Pure functions over recorded header facts."""

from __future__ import annotations

import re
from dataclasses import dataclass

from db.records import InstanceSummary, StudyFacts

# Projection radiography storage classes: CR, DX for presentation, DX for processing.
RADIOGRAPHY_SOP_CLASSES = frozenset(
    {"1.2.840.10008.5.1.4.1.1.1", "1.2.840.10008.5.1.4.1.1.1.1", "1.2.840.10008.5.1.4.1.1.1.1.1"}
)
CHEST_DESCRIPTION = re.compile(r"\b(CHEST|THORAX|THORAC\w*|LUNGS?|CXR|TORAX|THORAKS|POUMONS?)\b", re.IGNORECASE)


@dataclass(frozen=True)
class EligibilityRules:
    modalities: frozenset[str] = frozenset({"CR", "DX"})
    body_parts: frozenset[str] = frozenset({"CHEST"})


@dataclass(frozen=True)
class Eligibility:
    eligible: bool
    reason: str | None
    instances: tuple[InstanceSummary, ...]
    """The images to analyse (empty when not eligible)."""


def _is_chest(instance: InstanceSummary, study_description: str | None, rules: EligibilityRules) -> bool:
    if instance.body_part_examined:
        return instance.body_part_examined.strip().upper() in rules.body_parts
    return bool(study_description and CHEST_DESCRIPTION.search(study_description))


def evaluate(facts: StudyFacts, rules: EligibilityRules | None = None) -> Eligibility:
    """Eligible when at least one image is a CR/DX radiograph of the chest; the reason names what was missing."""
    rules = rules or EligibilityRules()
    radiographs = [
        i
        for i in facts.instances
        if i.sop_class_uid in RADIOGRAPHY_SOP_CLASSES and (i.modality or "").upper() in rules.modalities
    ]
    if not radiographs:
        return Eligibility(False, "no CR/DX radiograph in the study", ())
    chest = tuple(i for i in radiographs if _is_chest(i, facts.study_description, rules))
    if not chest:
        parts = sorted({(i.body_part_examined or "missing").upper() for i in radiographs})
        return Eligibility(False, f"not a chest study (body part examined: {', '.join(parts)})", ())
    return Eligibility(True, None, chest)
