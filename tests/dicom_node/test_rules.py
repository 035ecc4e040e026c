"""dicom_node.rules: which studies are analysed, which get a not-performed SR, and the patient's age."""

from __future__ import annotations

from pathlib import Path

import pytest

from config.settings import RulesSettings
from db.studies import InstanceSummary, StudyFacts
from dicom_node.rules import Verdict, evaluate, patient_age_years

CR = "1.2.840.10008.5.1.4.1.1.1"


def instance(
    body_part: str | None = "CHEST",
    modality: str = "CR",
    sop_class: str = CR,
    view: str | None = "PA",
    age: int | None = 50,
    source: str = "PACS",
) -> InstanceSummary:
    return InstanceSummary(
        instance_id=1,
        modality=modality,
        body_part_examined=body_part,
        view_position=view,
        calling_ae_title=source,
        sop_instance_uid="1.2.3.4",
        sop_class_uid=sop_class,
        spool_path=Path("/x"),
        patient_age_years=age,
    )


def study(*instances: InstanceSummary, description: str | None = "THORAX") -> StudyFacts:
    return StudyFacts(1, description, instances)


def test_chest_pa_cr_is_analysed() -> None:
    decision = evaluate(study(instance()))
    assert decision.verdict is Verdict.ANALYSE and decision.reason is None and len(decision.instances) == 1


@pytest.mark.parametrize(
    ("facts", "reason"),
    [
        (study(instance("EXTREMITY"), description="Non-ossifying fibroma"), "EXTREMITY"),
        (study(instance(None), description="XR KNEE"), "not a chest study"),
        (study(instance("CHEST", "CT", "1.2.840.10008.5.1.4.1.1.2")), "CR/DX"),
    ],
)
def test_non_chest_studies_get_nothing(facts: StudyFacts, reason: str) -> None:
    decision = evaluate(facts)
    assert decision.verdict is Verdict.NOT_APPLICABLE and reason in (decision.reason or "")


def test_missing_body_part_falls_back_to_a_chest_like_description() -> None:
    assert evaluate(study(instance(None), description="XR CHEST PA")).eligible


def test_lateral_only_is_not_performed_and_frontal_views_are_chosen() -> None:
    lateral = evaluate(study(instance(view="LL")))
    assert lateral.verdict is Verdict.NOT_PERFORMED and "frontal" in (lateral.reason or "")
    both = evaluate(study(instance(view="PA"), instance(view="LL")))
    assert both.eligible and [i.view_position for i in both.instances] == ["PA"]
    assert evaluate(study(instance(view=None))).eligible, "no View Position: treated as frontal"
    assert evaluate(study(instance(view="LL")), RulesSettings(require_frontal_view=False)).eligible


def test_minimum_age() -> None:
    rules = RulesSettings(minimum_patient_age_years=18)
    assert evaluate(study(instance(age=40)), rules).eligible
    young = evaluate(study(instance(age=12)), rules)
    assert young.verdict is Verdict.NOT_PERFORMED and "younger than 18" in (young.reason or "")
    unknown = evaluate(study(instance(age=None)), rules)
    assert unknown.verdict is Verdict.NOT_PERFORMED and "unknown" in (unknown.reason or "")


def test_allowed_source_aets() -> None:
    rules = RulesSettings(allowed_source_aets=["ED_PACS"])
    assert evaluate(study(instance(source="ED_PACS")), rules).eligible
    assert evaluate(study(instance(source="OTHER")), rules).verdict is Verdict.NOT_APPLICABLE


@pytest.mark.parametrize(
    ("age", "birth", "study_date", "years"),
    [
        ("045Y", None, None, 45),
        ("018M", None, None, 1),
        ("010D", None, None, 0),
        ("002W", None, None, 0),
        (None, "19800615", "20040826", 24),
        (None, "19800827", "20040826", 23),
        (None, None, "20040826", None),
        ("garbage", "19801341", "20040826", None),
    ],
)
def test_patient_age_years(age: str | None, birth: str | None, study_date: str | None, years: int | None) -> None:
    assert patient_age_years(age, birth, study_date) == years
