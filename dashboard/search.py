"""What the studies page and ``/api/jobs`` search by: state, detector, urgency, a Study Instance UID or an Accession
Number, the date received and the calling AE title.

An Accession Number is never stored: the query is turned into its keyed digest (``config.privacy``) and matched
against the digest each study row keeps, so the number stays out of the database, and out of the page beyond the
search box the user typed it into.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import ColumnElement, exists, or_, select

from config.privacy import accession_digest
from db.models import Instance, Job, JobState, Study, Urgency


@dataclass(frozen=True)
class JobFilter:
    state: JobState | None = None
    detector: str | None = None
    urgency: Urgency | None = None
    study: str = ""
    """A Study Instance UID or an Accession Number, matched exactly."""
    received_from: date | None = None
    """The first day (local time) on which the study's last instance arrived."""
    received_to: date | None = None
    """The last such day, included."""
    calling_ae: str = ""
    """An instance of the study came from this AE title."""

    def conditions(self, digest_key: str) -> list[ColumnElement[bool]]:
        found: list[ColumnElement[bool]] = []
        if self.state is not None:
            found.append(Job.state == self.state)
        if self.detector:
            found.append(Job.detector == self.detector)
        if self.urgency is not None:
            found.append(Job.urgency == self.urgency)
        if text := self.study.strip():
            found.append(
                or_(Study.study_instance_uid == text, Study.accession_digest == accession_digest(text, digest_key))
            )
        if self.received_from is not None:
            found.append(Study.last_received_at >= _local_midnight(self.received_from))
        if self.received_to is not None:
            found.append(Study.last_received_at < _local_midnight(self.received_to + timedelta(days=1)))
        if ae := self.calling_ae.strip():
            found.append(
                exists(select(Instance.id).where(Instance.study_id == Job.study_id, Instance.calling_ae_title == ae))
            )
        return found

    def query_string(self) -> dict[str, Any]:
        """The filter as the page's query parameters, for its pager links."""
        return {
            "state": self.state.value if self.state else "",
            "detector": self.detector or "",
            "urgency": self.urgency.value if self.urgency else "",
            "study": self.study,
            "received_from": self.received_from.isoformat() if self.received_from else "",
            "received_to": self.received_to.isoformat() if self.received_to else "",
            "calling_ae": self.calling_ae,
        }


def _local_midnight(day: date) -> datetime:
    """The start of ``day`` in the node's local time zone, in UTC (how the database keeps times)."""
    return datetime.combine(day, time()).astimezone().astimezone(UTC)


def parse_date(text: str) -> date | None:
    """A date from the form (YYYY-MM-DD); anything else is no bound."""
    try:
        return date.fromisoformat(text) if text else None
    except ValueError:
        return None
