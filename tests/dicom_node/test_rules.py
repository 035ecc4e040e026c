from __future__ import annotations

from pathlib import Path

from db.records import InstanceSummary, StudyFacts
from dicom_node.rules import evaluate

CR = "1.2.840.10008.5.1.4.1.1.1"


def instance(body_part: str | None, modality: str = "CR", sop_class: str = CR) -> InstanceSummary:
    return InstanceSummary(1, "1.2.3.4", sop_class, modality, body_part, "PA", "PACS", Path("/x"))


def test_chest_cr_is_eligible() -> None:
    decision = evaluate(StudyFacts(1, "THORAX", (instance("CHEST"),)))
    assert decision.eligible and decision.reason is None and len(decision.instances) == 1


def test_extremity_is_not_eligible_with_reason() -> None:
    decision = evaluate(StudyFacts(1, "Non-ossifying fibroma", (instance("EXTREMITY"),)))
    assert not decision.eligible and decision.reason is not None and "EXTREMITY" in decision.reason


def test_missing_body_part_falls_back_to_a_chest_like_description() -> None:
    assert evaluate(StudyFacts(1, "XR CHEST PA", (instance(None),))).eligible
    assert not evaluate(StudyFacts(1, "XR KNEE", (instance(None),))).eligible


def test_non_radiograph_is_not_eligible() -> None:
    decision = evaluate(StudyFacts(1, "CHEST", (instance("CHEST", "CT", "1.2.840.10008.5.1.4.1.1.2"),)))
    assert not decision.eligible and "CR/DX" in (decision.reason or "")
