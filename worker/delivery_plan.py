"""Which deliveries a recorded result gets: every object to every DICOM destination, and messages about the SR to the
RIS (HL7), the EHR (FHIR) and, for a critical result (or every result, where asked), the webhooks."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.orm import Session

from config.settings import Settings
from db import deliveries
from db.models import Channel, MessagePurpose, ResultKind, Urgency


def message_targets(settings: Settings, urgency: Urgency) -> dict[Channel, list[str]]:
    """The non-DICOM destinations that hear about a result of this urgency."""
    return {
        Channel.HL7: [e.name for e in settings.hl7],
        Channel.FHIR: [e.name for e in settings.fhir],
        Channel.WEBHOOK: [w.name for w in settings.webhooks if w.all_results or urgency is Urgency.CRITICAL],
    }


def dicom_targets(settings: Settings, kind: ResultKind, senders: set[str]) -> list[str]:
    """The DICOM destinations that take objects of ``kind`` from a study sent by ``senders`` (each destination's
    ``kinds``, ``from_calling_aets`` and ``return_to_sender``)."""
    return [d.name for d in settings.destinations if d.takes(kind.value, senders)]


def plan_deliveries(
    settings: Settings,
    session: Session,
    results: Sequence[tuple[ResultKind, int]],
    urgency: Urgency,
    senders: set[str],
) -> list[int] | None:
    """The ids of the deliveries still to send (none when all were sent before); None when no destination is meant to
    receive this result (none configured or routed to it, or only webhooks and the result is not critical)."""
    sr_ids = [result_id for kind, result_id in results if kind is ResultKind.SR]
    targets = message_targets(settings, urgency)
    routed = [(result_id, dicom_targets(settings, kind, senders)) for kind, result_id in results]
    if not any(names for _, names in routed) and not (sr_ids and any(targets.values())):
        return None
    pending: list[int] = []
    for result_id, names in routed:
        pending += deliveries.ensure_deliveries(session, [result_id], names)
    for channel, names in targets.items():
        pending += deliveries.ensure_deliveries(session, sr_ids, names, channel=channel)
    return pending


def plan_reminders(settings: Settings, session: Session, sr_id: int) -> list[int]:
    """A second webhook message for a critical result nobody has acknowledged in time."""
    names = [w.name for w in settings.webhooks]
    return deliveries.ensure_deliveries(session, [sr_id], names, Channel.WEBHOOK, MessagePurpose.REMINDER)
