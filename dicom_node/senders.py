"""How long a released association's studies wait before they are complete, learned per sender.

A PACS forwarding a study sends it over one association (Orthanc and DCMTK storescu with the whole study, measured by
``bench/association_gaps.py``): its release means the study is complete, and waiting costs every study the wait. A
sender that opens an association per image (a modality, a script calling storescu per file) leaves 60 to 250 ms
between them (same bench); its studies need the debounce, or each image would make a job of its own.

So a sender's studies complete at the release until one of its associations brings images into a study another
association already filled; from then on, in this SCP process, its studies wait ``scp.completion_debounce_s`` after
each release. That first split study costs one extra result, which the follow-up supersedes (never a wrong one).
Senders paced by people (a plate reader, a radiographer repositioning the patient: tens of seconds) are beyond any
debounce; their follow-up results supersede in the same way.
"""

from __future__ import annotations

import logging
import threading

logger = logging.getLogger(__name__)


class SenderHabits:
    def __init__(self, debounce_s: float, learn: bool) -> None:
        self._debounce_s = debounce_s
        self._learn = learn
        self._splitting: set[str] = set()
        self._lock = threading.Lock()

    def debounce_s(self, calling_ae: str) -> float:
        """Seconds this sender's released studies wait before they are complete."""
        with self._lock:
            return self._debounce_s if not self._learn or calling_ae in self._splitting else 0.0

    def note_split(self, calling_ae: str) -> None:
        """The sender brought images into a study another association had filled."""
        with self._lock:
            if calling_ae in self._splitting:
                return
            self._splitting.add(calling_ae)
        if self._learn:
            logger.info(
                "sender %s splits studies across associations: its studies now wait %.1f s after each release",
                calling_ae,
                self._debounce_s,
            )
