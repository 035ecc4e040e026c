"""Send one HL7, FHIR or webhook delivery: build the message at send time and report the outcome.

Patient identifiers are read here, put into the message, and dropped; an error text that reaches the database has
them removed first (a peer may quote them back in its error).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

from hl7apy.exceptions import HL7apyException

from config.outputs import FhirEndpoint, Hl7Endpoint, WebhookEndpoint
from config.settings import Settings
from db.deliveries import DeliveryWork
from db.engine import SessionFactory
from db.models import Channel
from worker.clinical import fhir, hl7, http, mllp, webhook
from worker.clinical.report import PatientHeader, ResultReport, SourceUnavailableError, load_report, read_patient

logger = logging.getLogger(__name__)

Endpoint = Hl7Endpoint | FhirEndpoint | WebhookEndpoint


@dataclass(frozen=True)
class MessageOutcome:
    ok: bool
    permanent_failure: bool = False
    error: str | None = None


def endpoint_for(settings: Settings, channel: Channel, name: str) -> Endpoint | None:
    candidates: dict[Channel, list[Endpoint]] = {
        Channel.HL7: list(settings.hl7),
        Channel.FHIR: list(settings.fhir),
        Channel.WEBHOOK: list(settings.webhooks),
    }
    return next((e for e in candidates.get(channel, []) if e.name == name), None)


def redact(text: str | None, patient: PatientHeader | None) -> str | None:
    """``text`` without any of the patient's identifiers in it."""
    if text is None or patient is None:
        return text
    for value in (
        patient.patient_id,
        patient.family_name,
        patient.given_name,
        patient.accession_number,
        patient.placer_order_number,
        patient.filler_order_number,
        patient.birth_date,
    ):
        if len(value) >= 3:
            text = text.replace(value, "[redacted]")
    return text


def deliver_message(settings: Settings, session_factory: SessionFactory, work: DeliveryWork) -> MessageOutcome:
    endpoint = endpoint_for(settings, work.channel, work.destination_name)
    if endpoint is None:
        return MessageOutcome(False, True, f"{work.channel.value} destination {work.destination_name!r} not configured")
    patient: PatientHeader | None = None
    try:
        with session_factory() as session:
            report = load_report(session, work.job_id, work.path, settings.urgency.critical_thresholds)
            if not isinstance(endpoint, WebhookEndpoint):
                patient = read_patient(session, report, work.path)
    except SourceUnavailableError as exc:
        return MessageOutcome(False, True, str(exc))
    try:
        outcome = _send(endpoint, work, report, patient)
    except (
        ValueError,
        TypeError,
        LookupError,
        HL7apyException,
    ) as exc:  # a header value the message cannot carry: never loops
        outcome = MessageOutcome(False, True, f"the message could not be built ({type(exc).__name__})")
    return MessageOutcome(outcome.ok, outcome.permanent_failure, redact(outcome.error, patient))


def _send(
    endpoint: Endpoint, work: DeliveryWork, report: ResultReport, patient: PatientHeader | None
) -> MessageOutcome:
    message_id = hl7.control_id(report.sr_sop_instance_uid, work.destination_name, work.purpose)
    if isinstance(endpoint, Hl7Endpoint):
        assert patient is not None
        return _send_hl7(endpoint, hl7.build_oru(report, patient, endpoint, message_id), message_id)
    if isinstance(endpoint, FhirEndpoint):
        assert patient is not None
        bundle = fhir.build_bundle(report, patient, endpoint.patient_identifier_system)
        headers = {"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"}
        if endpoint.bearer_token is not None:
            headers["Authorization"] = f"Bearer {endpoint.bearer_token.get_secret_value()}"
        body = json.dumps(bundle).encode()
        result = http.post(endpoint.url, body, headers, endpoint.timeout_s, endpoint.tls_ca_certificates)
        return MessageOutcome(result.ok, result.permanent_failure, result.error)
    body = webhook.webhook_body(report, work.purpose, message_id, endpoint.dashboard_url)
    headers = {"Content-Type": "application/json", webhook.MESSAGE_ID_HEADER: message_id}
    headers |= webhook.sign(endpoint.secret.get_secret_value(), body)
    result = http.post(endpoint.url, body, headers, endpoint.timeout_s, endpoint.tls_ca_certificates)
    return MessageOutcome(result.ok, result.permanent_failure, result.error)


def _send_hl7(endpoint: Hl7Endpoint, message: str, message_id: str) -> MessageOutcome:
    """AA: delivered. AE: the receiver failed to process it, retry. AR: rejected, dead letter with its words."""
    try:
        ack = hl7.read_ack(mllp.send_message(endpoint, message), message_id)
    except (mllp.MllpError, hl7.AckError) as exc:
        return MessageOutcome(False, False, str(exc))
    if ack.code is hl7.AckCode.ACCEPTED:
        return MessageOutcome(True)
    words = f"ACK {ack.code.value}{': ' + ack.text[:300] if ack.text else ''}"
    return MessageOutcome(False, ack.code is hl7.AckCode.REJECTED, words)
