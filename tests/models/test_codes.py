"""The code table (models/codes.py): every public model's label is coded, and every code is well formed."""

from __future__ import annotations

import pytest
from stdnum import verhoeff

from models.codes import (
    FINDING_CODES,
    FINDING_SITES,
    UNMAPPED,
    VINDR_LABELS,
    XRV_LABELS,
    CodedConcept,
    FindingLabel,
    UnknownLabelError,
    code_for,
    require_known_labels,
    site_for,
)


def test_codes_come_from_the_table() -> None:
    assert (code_for("Nodule").scheme, code_for("Nodule").value) == ("SCT", "27925004")
    with pytest.raises(UnknownLabelError, match="Unicorn"):
        code_for("Unicorn")


def test_every_public_model_label_is_coded() -> None:
    assert len(XRV_LABELS) == 18 and len(VINDR_LABELS) == 14
    uncoded = [name for name, label in {**XRV_LABELS, **VINDR_LABELS}.items() if label is None]
    assert uncoded == [] and UNMAPPED == {}
    assert set(FINDING_CODES) == set(FindingLabel) == set(FINDING_SITES)


def test_a_detector_with_an_uncoded_label_cannot_load() -> None:
    with pytest.raises(UnknownLabelError, match="'Unicorn' has no code"):
        require_known_labels(["Nodule", "Unicorn"])


def _every_concept() -> list[CodedConcept]:
    return [*FINDING_CODES.values(), *FINDING_SITES.values()]


@pytest.mark.parametrize("concept", _every_concept(), ids=lambda c: f"{c.scheme}-{c.value}")
def test_every_code_is_well_formed(concept: CodedConcept) -> None:
    """An SCTID ends in a Verhoeff check digit after a two-digit partition, "00" for a concept (SNOMED CT TIG)."""
    assert concept.scheme in {"SCT", "DCM"} and concept.value.isdigit() and concept.meaning
    assert len(concept.meaning) <= 64, "Code Meaning is LO"
    if concept.scheme == "SCT":
        assert 6 <= len(concept.value) <= 18 and concept.value[-3:-1] == "00", concept
        assert verhoeff.is_valid(concept.value), concept


def test_the_check_digit_rejects_a_mistyped_code() -> None:
    """The third-party "78381009" offered for pleural thickening is not an SCTID at all."""
    assert not verhoeff.is_valid("78381009")
    assert verhoeff.is_valid("8186001") and not verhoeff.is_valid("8186002")


def test_post_coordinated_findings_are_narrowed_by_their_site() -> None:
    """A descriptor or a morphology as the finding says nothing without where it is."""
    assert (code_for("Aortic enlargement").value, site_for("Aortic enlargement").meaning) == ("25322007", "Aorta")
    assert (code_for("Enlarged cardiomediastinum").value, site_for("Enlarged cardiomediastinum").meaning) == (
        "260376009",
        "Mediastinum",
    )
    assert site_for("Pleural thickening").value == "3120008"


def test_no_two_labels_read_the_same_in_the_sr() -> None:
    """The SR states a finding as (finding, finding site): two labels with the same pair could not be told apart."""
    pairs = [(code.value, FINDING_SITES[label].value) for label, code in FINDING_CODES.items()]
    assert len(set(pairs)) == len(pairs)
