"""``cxr validate import``: a truth file stored in one transaction, with a summary of what the node cannot yet use."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import distinct, select

from db.engine import SessionFactory
from db.models import LabelScore
from db.validation import known_studies, replace_truth
from worker.validation.truth_file import parse_truth

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ImportSummary:
    readings: int
    studies: int
    unknown_study_lines: tuple[int, ...]
    """Lines of studies the node has not received: kept, and counted once they arrive and are analysed."""
    unscored_labels: tuple[str, ...]
    """Labels in the file that no analysis has scored: kept, and left out of the report until a model reports them."""

    def lines(self) -> list[str]:
        text = [f"imported {self.readings} readings of {self.studies} studies"]
        if self.unknown_study_lines:
            shown = ", ".join(str(n) for n in self.unknown_study_lines[:20])
            more = f" and {len(self.unknown_study_lines) - 20} more" if len(self.unknown_study_lines) > 20 else ""
            text.append(
                f"{len(self.unknown_study_lines)} studies not received by this node (lines {shown}{more}): kept, "
                "they count once received"
            )
        if self.unscored_labels:
            text.append(
                f"labels no analysis has scored: {', '.join(self.unscored_labels)}: kept, not in the report until a "
                "model reports them"
            )
        return text


def import_truth(sessions: SessionFactory, path: Path) -> ImportSummary:
    """Check the whole file first (``TruthFileError`` names the line), then store it all or nothing."""
    parsed = parse_truth(path)
    with sessions.begin() as session:
        stored = replace_truth(session, parsed.rows)
        known = known_studies(session, parsed.lines)
        scored = set(session.scalars(select(distinct(LabelScore.label))))
    unknown = tuple(sorted(line for uid, line in parsed.lines.items() if uid not in known))
    labels = sorted({label for row in parsed.rows for label in row.values} - scored)
    logger.info("truth imported: %d readings, %d studies, %d not received", stored, len(parsed.lines), len(unknown))
    return ImportSummary(stored, len(parsed.lines), unknown, tuple(labels))
