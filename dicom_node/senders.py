"""How long a released association's studies wait before they are complete, learned per sender.

A PACS forwarding a study sends it over one association (Orthanc and DCMTK storescu with the whole study, measured by
``bench/association_gaps.py``): its release means the study is complete, and waiting costs every study the wait. A
sender that opens an association per image (a modality, a script calling storescu per file) leaves 60 to 250 ms
between them (same bench); its studies need the debounce, or each image would make a job of its own.

So a sender's studies complete at the release until one of its associations brings images into a study another
association already filled; from then on its studies wait ``scp.completion_debounce_s`` after each release. That first
split study costs one extra result, which the follow-up supersedes (never a wrong one). What is learned is kept in the
database (``db.senders``) and read there at each release (one primary-key lookup), so the node's other SCP processes
and a restarted one do not pay that again, and ``cxr senders forget`` takes effect at once.
Senders paced by people (a plate reader, a radiographer repositioning the patient: tens of seconds) are beyond any
debounce; their follow-up results supersede in the same way.
"""

from __future__ import annotations

import logging

from sqlalchemy.orm import Session

from db import senders

logger = logging.getLogger(__name__)


class SenderHabits:
    def __init__(self, debounce_s: float, learn: bool) -> None:
        self._debounce_s = debounce_s
        self._learn = learn

    def debounce_s(self, session: Session, calling_ae: str) -> float:
        """Seconds this sender's released studies wait before they are complete."""
        if not self._learn or senders.splits_studies(session, calling_ae):
            return self._debounce_s
        return 0.0

    def note_split(self, session: Session, calling_ae: str) -> None:
        """The sender brought images into a study another association had filled: recorded in ``session``'s
        transaction (the one that schedules the studies' completion)."""
        if senders.record_splitting(session, calling_ae) and self._learn:
            logger.info(
                "sender %s splits studies across associations: its studies now wait %.1f s after each release",
                calling_ae,
                self._debounce_s,
            )
