"""Eligibility: which studies and images the detector analyses. Pure functions over recorded header facts.

Three verdicts:
- ANALYSE: the images to analyse;
- NOT_PERFORMED: a chest study the detector must not analyse (no frontal view, patient too young or of unknown age):
  it receives an SR saying analysis was not performed and why, so silence is never read as "normal";
- NOT_APPLICABLE: not a chest radiograph, or from a source not served: recorded, and nothing is written into it.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from datetime import date

from config.settings import RulesSettings
from db.studies import InstanceSummary, StudyFacts

# Projection radiography storage classes: CR, DX for presentation, DX for processing.
RADIOGRAPHY_SOP_CLASSES = frozenset(
    {"1.2.840.10008.5.1.4.1.1.1", "1.2.840.10008.5.1.4.1.1.1.1", "1.2.840.10008.5.1.4.1.1.1.1.1"}
)
CHEST_DESCRIPTION = re.compile(r"\b(CHEST|THORAX|THORAC\w*|LUNGS?|CXR|TORAX|THORAKS|POUMONS?)\b", re.IGNORECASE)
AGE_STRING = re.compile(r"(\d{3})([DWMY])")
DAYS_PER_UNIT = {"D": 1.0, "W": 7.0, "M": 365.25 / 12, "Y": 365.25}


class Verdict(enum.StrEnum):
    ANALYSE = "ANALYSE"
    NOT_PERFORMED = "NOT_PERFORMED"
    NOT_APPLICABLE = "NOT_APPLICABLE"
    WITHDRAWN = "WITHDRAWN"
    """Every image of the study was rejected by the PACS: nothing to analyse, earlier results to retract."""


WITHDRAWN_REASON = "every image of the study was rejected by the PACS (IOCM rejection note)"


@dataclass(frozen=True)
class Eligibility:
    verdict: Verdict
    reason: str | None
    instances: tuple[InstanceSummary, ...]
    """The images to analyse (ANALYSE), or the chest images the not-performed SR refers to (NOT_PERFORMED)."""

    @property
    def eligible(self) -> bool:
        return self.verdict is Verdict.ANALYSE


def patient_age_years(age: str | None, birth_date: str | None, study_date: str | None) -> int | None:
    """Whole years from Patient's Age (nnnD/W/M/Y), else from birth date and study date; None when unknown."""
    if age:
        match = AGE_STRING.fullmatch(age.strip())
        if match:
            return int(int(match[1]) * DAYS_PER_UNIT[match[2]] // 365.25)
    try:
        born = date(int(birth_date[:4]), int(birth_date[4:6]), int(birth_date[6:8])) if birth_date else None
        studied = date(int(study_date[:4]), int(study_date[4:6]), int(study_date[6:8])) if study_date else None
    except ValueError:
        return None
    if born is None or studied is None or studied < born:
        return None
    return studied.year - born.year - ((studied.month, studied.day) < (born.month, born.day))


def _is_chest(instance: InstanceSummary, study_description: str | None, rules: RulesSettings) -> bool:
    if instance.body_part_examined:
        return instance.body_part_examined.strip().upper() in {b.upper() for b in rules.body_parts}
    return bool(study_description and CHEST_DESCRIPTION.search(study_description))


def _is_frontal(instance: InstanceSummary, rules: RulesSettings) -> bool:
    view = (instance.view_position or "").strip().upper()
    return not view or view in {v.upper() for v in rules.frontal_views}


def evaluate(facts: StudyFacts, rules: RulesSettings | None = None) -> Eligibility:
    """Images the PACS rejected (IOCM) are left out; a study whose every image was rejected is WITHDRAWN."""
    rules = rules or RulesSettings()
    modalities = {m.upper() for m in rules.modalities}
    kept = [i for i in facts.instances if i.rejected_at is None]
    if facts.instances and not kept:
        return Eligibility(Verdict.WITHDRAWN, WITHDRAWN_REASON, ())
    radiographs = [
        i for i in kept if i.sop_class_uid in RADIOGRAPHY_SOP_CLASSES and (i.modality or "").upper() in modalities
    ]
    if not radiographs:
        return Eligibility(Verdict.NOT_APPLICABLE, "no CR/DX radiograph in the study", ())
    chest = tuple(i for i in radiographs if _is_chest(i, facts.study_description, rules))
    if not chest:
        parts = sorted({(i.body_part_examined or "missing").upper() for i in radiographs})
        return Eligibility(Verdict.NOT_APPLICABLE, f"not a chest study (body part examined: {', '.join(parts)})", ())
    allowed = {a.upper() for a in rules.allowed_source_aets}
    if allowed and not any((i.calling_ae_title or "").upper() in allowed for i in chest):
        return Eligibility(Verdict.NOT_APPLICABLE, "sent by a source AE that is not served", ())
    if rules.minimum_patient_age_years is not None:
        ages = [i.patient_age_years for i in chest]
        if any(a is None for a in ages):
            return Eligibility(Verdict.NOT_PERFORMED, "patient age unknown", chest)
        if min(a for a in ages if a is not None) < rules.minimum_patient_age_years:
            return Eligibility(
                Verdict.NOT_PERFORMED, f"patient younger than {rules.minimum_patient_age_years} years", chest
            )
    frontal = tuple(i for i in chest if _is_frontal(i, rules)) if rules.require_frontal_view else chest
    if not frontal:
        return Eligibility(Verdict.NOT_PERFORMED, "no frontal (PA/AP) view", chest)
    return Eligibility(Verdict.ANALYSE, None, frontal)
