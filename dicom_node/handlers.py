"""The SCP's event handlers: C-ECHO, C-STORE (through ``ingest``), association events and storage commitment
reports. Each records what it must and returns a DIMSE status; none raises to the peer."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any, cast

from pydicom.dataset import Dataset
from pynetdicom.dimse_primitives import C_STORE
from pynetdicom.events import Event
from sqlalchemy.exc import SQLAlchemyError

from db import audit, deliveries, studies
from db.errors import describe_database_error
from db.models import AuditKind, utcnow
from dicom_node.admission import LIMIT_EXCEEDED, bound_pdu_length, pdu_bound
from dicom_node.audit_events import audit_received, audit_refused
from dicom_node.ingest import Arrival, NodeContext, ingest
from dicom_node.sockets import send_at_once
from dicom_node.validation import Status

logger = logging.getLogger(__name__)

PRIORITY_HIGH = 0x0001  # C-STORE Priority (0000,0700): 0x0002 LOW, 0x0000 MEDIUM, 0x0001 HIGH


def handle_echo(event: Event) -> int:
    return Status.SUCCESS


def _request(event: Event) -> C_STORE:
    return cast(C_STORE, event.request)


def handle_store(event: Event, context: NodeContext) -> int | Dataset:
    """The data set was streamed to a file in the spool's ``.incoming`` while it arrived (chunked receive)."""
    request = _request(event)
    arrival = Arrival(
        sop_class_uid=str(request.AffectedSOPClassUID),
        sop_instance_uid=str(request.AffectedSOPInstanceUID),
        transfer_syntax=event.context.transfer_syntax,
        calling_ae_title=str(event.assoc.requestor.ae_title).strip() or None,
        high_priority=request.Priority == PRIORITY_HIGH,
    )
    ingested = ingest(event.dataset_path, arrival, context)
    if ingested.study_id is not None:
        context.associations.add(id(event.assoc), ingested.study_id, arrival.sop_class_uid)
        if context.stored is not None and ingested.status == 0x0000:
            context.stored(ingested.study_id)
    return ingested.status


def handle_requested(event: Event, context: NodeContext) -> None:
    """An association was asked for: take a slot, or reject it (transient, local limit exceeded) and audit that."""
    if context.slots is None:
        return
    association = event.assoc
    refused = context.slots.take(id(association), str(association.requestor.address))
    if refused is None:
        return
    logger.warning("association from %s rejected: %s", association.requestor.address, refused)
    association.acse.send_reject(*LIMIT_EXCEEDED)
    association.is_rejected = True
    _audit(context, AuditKind.ASSOCIATION_REJECTED, association.requestor, refused)
    calling_ae, address = _peer(association.requestor)
    audit_refused(context, address, calling_ae, refused)
    association.kill()


def handle_connection_opened(event: Event, context: NodeContext) -> None:
    """Before the first PDU is read: bound how long a PDU this connection may send; send our answers at once."""
    send_at_once(event)
    address = str(event.assoc.requestor.address)

    def refused(length: int) -> None:
        logger.warning("connection from %s aborted: a PDU of %d bytes exceeds the bound", address, length)
        _record_refused(context, address, f"PDU of {length} bytes over the {pdu_bound(context.settings)}-byte bound")

    sock = event.assoc.dul.socket
    if sock is not None:  # pynetdicom sets it before this event; an acceptor always has one
        bound_pdu_length(sock, pdu_bound(context.settings), refused)


def handle_connection_closed(event: Event, context: NodeContext) -> None:
    """Whatever the association came to, its slot is free again."""
    if context.slots is not None:
        context.slots.give_back(id(event.assoc))


def handle_released(event: Event, context: NodeContext) -> None:
    """The peer released the association: its studies are complete, at once or after the debounce
    (``dicom_node.senders``)."""
    transfers = context.associations.pop(id(event.assoc))
    audit_received(context, _peer(event.assoc.requestor), transfers)
    study_ids = list(transfers)
    if not study_ids:
        return
    calling_ae = str(event.assoc.requestor.ae_title).strip()
    try:
        with context.session_factory.begin() as session:
            held = studies.instance_counts(session, study_ids)
            if any(held.get(study_id, 0) > sum(transfers[study_id].values()) for study_id in study_ids):
                context.senders.note_split(session, calling_ae)  # their images came over other associations too
            due = utcnow() + timedelta(seconds=context.senders.debounce_s(session, calling_ae))
            studies.schedule_completion(session, study_ids, due)
    except SQLAlchemyError as exc:
        # The stability fallback already recorded with each instance still completes these studies.
        logger.error("could not schedule completion of %d studies: %s", len(study_ids), describe_database_error(exc))
        return
    if context.completion_due is not None:
        context.completion_due(due)


def handle_accepted(event: Event, context: NodeContext) -> None:
    """Count the association (peer AE and address only) for /metrics and the audit trail."""
    _audit(context, AuditKind.ASSOCIATION_ACCEPTED, event.assoc.requestor, None)


def _audit(context: NodeContext, kind: AuditKind, requestor: Any, detail: str | None) -> None:
    try:
        with context.session_factory.begin() as session:
            audit.record_audit(session, kind, str(requestor.ae_title).strip()[:16], requestor.address, detail)
    except SQLAlchemyError as exc:
        logger.error("could not record %s: %s", kind.value, describe_database_error(exc))


def handle_rejected(event: Event, context: NodeContext) -> None:
    """We refused an association (unknown calling AE, wrong called AE, too many associations): audit it."""
    requestor = event.assoc.requestor
    detail = f"called AE {str(event.assoc.acceptor.ae_title).strip() or '?'}"
    logger.warning("association from %s rejected", requestor.address)
    _audit(context, AuditKind.ASSOCIATION_REJECTED, requestor, detail)
    calling_ae, address = _peer(requestor)
    audit_refused(context, address, calling_ae, f"association rejected ({detail})")


def _uids(items: object) -> list[tuple[str, int]]:
    """(SOP Instance UID, Failure Reason) of each item of a Referenced/Failed SOP Sequence."""
    return [(str(i.ReferencedSOPInstanceUID), int(i.get("FailureReason", 0))) for i in items or []]  # type: ignore[attr-defined]


def handle_commitment_report(event: Event, context: NodeContext) -> tuple[int, Dataset | None]:
    """N-EVENT-REPORT from a destination: which stored objects it has committed to keep, and which not."""
    try:
        report = event.event_information
        transaction_uid = str(report.TransactionUID)
        committed = {uid for uid, _ in _uids(report.get("ReferencedSOPSequence"))}
        failed = dict(_uids(report.get("FailedSOPSequence")))
    except Exception as exc:  # a malformed report: refuse it, the destination may send it again
        logger.warning("storage commitment report refused: %s", type(exc).__name__)
        return Status.CANNOT_UNDERSTAND, None
    try:
        with context.session_factory.begin() as session:
            jobs = deliveries.record_commitment(session, transaction_uid, committed, failed)
    except SQLAlchemyError as exc:
        logger.error("storage commitment report not recorded: %s", describe_database_error(exc))
        return Status.OUT_OF_RESOURCES, None
    logger.info("commitment report: %d committed, %d failed (jobs %s)", len(committed), len(failed), jobs)
    return Status.SUCCESS, None


def record_refused_connection(context: NodeContext, address: str) -> None:
    """A connection from an address outside ``scp.allowed_networks`` was closed before any association."""
    logger.warning("connection from %s refused: address not allowed", address)
    _record_refused(context, address, "address not allowed")


def _record_refused(context: NodeContext, address: str, detail: str) -> None:
    audit_refused(context, address, None, detail)
    try:
        with context.session_factory.begin() as session:
            audit.record_audit(session, AuditKind.CONNECTION_REFUSED, None, address, detail)
    except SQLAlchemyError as exc:
        logger.error("could not record a refused connection: %s", describe_database_error(exc))


def handle_aborted(event: Event, context: NodeContext) -> None:
    """An aborted association completes nothing early; the stability fallback applies. What it stored is audited."""
    audit_received(context, _peer(event.assoc.requestor), context.associations.pop(id(event.assoc)))


def _peer(requestor: Any) -> tuple[str, str]:
    """(calling AE title, address) of the association's requestor."""
    return str(requestor.ae_title).strip() or str(requestor.address), str(requestor.address)
