"""Which deliveries a recorded result gets: every object to every DICOM destination, and messages about the SR to the
RIS (HL7), the EHR (FHIR) and, for a critical result (or every result, where asked), the webhooks."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.orm import Session

from config.outputs import Destination, FhirEndpoint, Hl7Endpoint, WebhookEndpoint
from config.settings import Settings
from db import deliveries
from db.models import Channel, MessagePurpose, ResultKind, Urgency

Endpoint = Destination | Hl7Endpoint | FhirEndpoint | WebhookEndpoint


def is_live(settings: Settings, endpoint: Endpoint) -> bool:
    """Whether results go to ``endpoint`` now: its own mode, else ``results.mode``."""
    return (endpoint.mode or settings.results.mode) == "live"


def _chosen(settings: Settings, endpoints: Sequence[Endpoint], live: bool | None) -> list[str]:
    """The names of the endpoints in the mode asked for (None: either)."""
    return [e.name for e in endpoints if live is None or is_live(settings, e) is live]


def message_targets(settings: Settings, urgency: Urgency, live: bool | None = True) -> dict[Channel, list[str]]:
    """The non-DICOM destinations that hear about a result of this urgency."""
    webhooks = [w for w in settings.webhooks if w.all_results or urgency is Urgency.CRITICAL]
    return {
        Channel.HL7: _chosen(settings, settings.hl7, live),
        Channel.FHIR: _chosen(settings, settings.fhir, live),
        Channel.WEBHOOK: _chosen(settings, webhooks, live),
    }


def dicom_targets(settings: Settings, kind: ResultKind, senders: set[str], live: bool | None = True) -> list[str]:
    """The DICOM destinations that take objects of ``kind`` from a study sent by ``senders`` (each destination's
    ``kinds``, ``from_calling_aets`` and ``return_to_sender``), in the mode asked for."""
    return _chosen(settings, [d for d in settings.destinations if d.takes(kind.value, senders)], live)


def withheld(
    settings: Settings, results: Sequence[tuple[ResultKind, int]], urgency: Urgency, senders: set[str]
) -> bool:
    """Whether a destination in shadow mode would have received something of this result."""
    dicom = any(dicom_targets(settings, kind, senders, live=False) for kind, _ in results)
    sr = any(kind is ResultKind.SR for kind, _ in results)
    return dicom or (sr and any(message_targets(settings, urgency, live=False).values()))


def plan_deliveries(
    settings: Settings,
    session: Session,
    results: Sequence[tuple[ResultKind, int]],
    urgency: Urgency,
    senders: set[str],
    live: bool | None = True,
) -> list[int] | None:
    """The ids of the deliveries still to send (none when all were sent before); None when no destination is meant to
    receive this result (none configured, routed to it or live, or only webhooks and the result is not critical).
    ``live=None`` plans for shadow destinations too: an operator's release."""
    sr_ids = [result_id for kind, result_id in results if kind is ResultKind.SR]
    targets = message_targets(settings, urgency, live)
    routed = [(result_id, dicom_targets(settings, kind, senders, live)) for kind, result_id in results]
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
    names = _chosen(settings, settings.webhooks, live=True)
    return deliveries.ensure_deliveries(session, [sr_id], names, Channel.WEBHOOK, MessagePurpose.REMINDER)
