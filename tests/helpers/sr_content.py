"""Reading our SRs back in tests: the coded findings of the measurement groups."""

from __future__ import annotations

import pydicom

FINDING = "121071"
OVERALL_VALUES = ("52101004", "272519000", "82334004")
"""Present, Absent, Indeterminate: the overall group's Finding values, not findings of their own."""


def sr_finding_codes(sr: pydicom.Dataset) -> list[str]:
    """The finding type code of every finding group of the SR, in order."""
    return [
        item.ConceptCodeSequence[0].CodeValue
        for group in sr.ContentSequence[-1].ContentSequence
        for item in group.get("ContentSequence", [])
        if item.ValueType == "CODE"
        and item.ConceptNameCodeSequence[0].CodeValue == FINDING
        and item.ConceptCodeSequence[0].CodeValue not in OVERALL_VALUES
    ]
