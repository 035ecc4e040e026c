"""C-ECHO and C-STORE handlers. They persist, record and return a DIMSE status; they never raise to the peer.

An instance is acknowledged (0x0000) only after its file is fsynced into the spool and its row is committed.
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from pydicom.dataset import Dataset
from pydicom.uid import UID
from typing import Any, cast

from pynetdicom.dimse_primitives import C_STORE
from pynetdicom.events import Event
from sqlalchemy.exc import SQLAlchemyError

from db import deliveries, repository
from db.engine import SessionFactory
from db.models import AuditKind, utcnow
from db.privacy import uid_digest
from db.records import InstanceFacts
from db.settings import ScpSettings
from dicom_node.rules import patient_age_years
from dicom_node.spool import Spool
from dicom_node.validation import Refusal, Status, check_identity, check_pixels, read_received

logger = logging.getLogger(__name__)

PRIORITY_HIGH = 0x0001  # C-STORE Priority (0000,0700): 0x0002 LOW, 0x0000 MEDIUM, 0x0001 HIGH


@dataclass
class AssociationStudies:
    """Which studies each open association has touched, so its release can complete them."""

    _by_association: dict[int, set[int]] = field(default_factory=lambda: defaultdict(set))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, association_id: int, study_id: int) -> None:
        with self._lock:
            self._by_association[association_id].add(study_id)

    def pop(self, association_id: int) -> set[int]:
        with self._lock:
            return self._by_association.pop(association_id, set())


@dataclass
class NodeContext:
    """Dependencies of the handlers, bound explicitly when the server starts."""

    settings: ScpSettings
    spool: Spool
    session_factory: SessionFactory
    associations: AssociationStudies = field(default_factory=AssociationStudies)


def handle_echo(event: Event) -> int:
    return Status.SUCCESS


def _text(ds: Dataset, keyword: str, limit: int = 64) -> str | None:
    value = ds.get(keyword)
    return str(value).strip()[:limit] or None if value is not None else None


@dataclass(frozen=True)
class Arrival:
    """How a data set reached us: over DIMSE (from the request and context) or by upload (from its file meta)."""

    sop_class_uid: str
    sop_instance_uid: str
    transfer_syntax: UID
    calling_ae_title: str | None
    high_priority: bool = False
    """The C-STORE request's Priority was HIGH (0x0001)."""


@dataclass(frozen=True)
class Ingested:
    status: int | Dataset
    """The DIMSE status to answer (0x0000 only once the file is fsynced and its row committed)."""
    study_id: int | None = None


def _facts(arrival: Arrival, ds: Dataset, context: NodeContext) -> InstanceFacts:
    study_uid, sop_uid = str(ds.StudyInstanceUID), str(ds.SOPInstanceUID)
    return InstanceFacts(
        study_instance_uid=study_uid,
        series_instance_uid=str(ds.SeriesInstanceUID),
        sop_instance_uid=sop_uid,
        sop_class_uid=arrival.sop_class_uid,
        transfer_syntax_uid=str(arrival.transfer_syntax),
        modality=_text(ds, "Modality", 16),
        body_part_examined=_text(ds, "BodyPartExamined", 16),
        view_position=_text(ds, "ViewPosition", 16),
        study_description=_text(ds, "StudyDescription"),
        calling_ae_title=arrival.calling_ae_title,
        spool_path=context.spool.path_for(study_uid, sop_uid),
        # Only the age in years is kept: the birth date is read here and never stored.
        patient_age_years=patient_age_years(
            _text(ds, "PatientAge"), _text(ds, "PatientBirthDate"), _text(ds, "StudyDate")
        ),
        stat=_is_stat(arrival, context.settings),
    )


def _is_stat(arrival: Arrival, settings: ScpSettings) -> bool:
    return (arrival.high_priority and settings.honour_dimse_priority) or (
        arrival.calling_ae_title is not None and arrival.calling_ae_title in settings.stat_calling_aets
    )


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
        context.associations.add(id(event.assoc), ingested.study_id)
    return ingested.status


def ingest(received: Path, arrival: Arrival, context: NodeContext) -> Ingested:
    """Validate a received file, adopt it into the spool and record it: C-STORE and the dashboard's upload."""
    try:
        ds, pixel_length = read_received(received)
        refusal = check_identity(ds, arrival.sop_class_uid, arrival.sop_instance_uid)
        refusal = refusal or check_pixels(ds, arrival.transfer_syntax, pixel_length)
        facts = _facts(arrival, ds, context) if refusal is None else None
    except Exception as exc:  # a data set pydicom cannot parse: tell the peer, keep serving
        logger.warning("C-STORE refused: data set cannot be parsed (%s)", type(exc).__name__)
        return Ingested(Refusal(Status.CANNOT_PARSE, "data set cannot be parsed").as_response())
    if refusal is not None or facts is None:
        refusal = refusal or Refusal(Status.CANNOT_UNDERSTAND, "unusable identifiers")
        logger.warning("C-STORE refused with 0x%04X: %s", refusal.status, refusal.comment)
        return Ingested(refusal.as_response())
    return _persist(received, facts, context)


def _persist(received: Path, facts: InstanceFacts, context: NodeContext) -> Ingested:
    digest = uid_digest(facts.sop_instance_uid)
    try:
        path = context.spool.adopt(received, facts.study_instance_uid, facts.sop_instance_uid)
    except OSError as exc:
        logger.error("instance %s not stored: spool write failed (%s)", digest, exc.strerror or type(exc).__name__)
        return Ingested(Status.OUT_OF_RESOURCES)
    fallback = utcnow() + timedelta(seconds=context.settings.completion_stability_s)
    try:
        with context.session_factory.begin() as session:
            outcome = repository.record_instance(session, facts, fallback)
    except SQLAlchemyError as exc:
        logger.error("instance %s not recorded: database error (%s)", digest, type(exc).__name__)
        context.spool.discard(path)
        return Ingested(Status.OUT_OF_RESOURCES)
    logger.info("stored instance %s (study row %d, %s)", digest, outcome.study_id, "new" if outcome.created else "dup")
    return Ingested(Status.SUCCESS, outcome.study_id)


def handle_released(event: Event, context: NodeContext) -> None:
    """The peer released the association: its studies are complete after the debounce."""
    study_ids = context.associations.pop(id(event.assoc))
    if not study_ids:
        return
    due = utcnow() + timedelta(seconds=context.settings.completion_debounce_s)
    try:
        with context.session_factory.begin() as session:
            repository.schedule_completion(session, study_ids, due)
    except SQLAlchemyError as exc:
        # The stability fallback already recorded with each instance still completes these studies.
        logger.error("could not schedule completion of %d studies: %s", len(study_ids), type(exc).__name__)


def handle_accepted(event: Event, context: NodeContext) -> None:
    """Count the association (peer AE and address only) for /metrics and the audit trail."""
    _audit(context, AuditKind.ASSOCIATION_ACCEPTED, event.assoc.requestor, None)


def _audit(context: NodeContext, kind: AuditKind, requestor: Any, detail: str | None) -> None:
    try:
        with context.session_factory.begin() as session:
            repository.record_audit(session, kind, str(requestor.ae_title).strip()[:16], requestor.address, detail)
    except SQLAlchemyError as exc:
        logger.error("could not record %s: %s", kind.value, type(exc).__name__)


def handle_rejected(event: Event, context: NodeContext) -> None:
    """We refused an association (unknown calling AE, wrong called AE, too many associations): audit it."""
    requestor = event.assoc.requestor
    detail = f"called AE {str(event.assoc.acceptor.ae_title).strip() or '?'}"
    logger.warning("association from %s rejected", requestor.address)
    _audit(context, AuditKind.ASSOCIATION_REJECTED, requestor, detail)


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
        logger.error("storage commitment report not recorded: %s", type(exc).__name__)
        return Status.OUT_OF_RESOURCES, None
    logger.info("commitment report: %d committed, %d failed (jobs %s)", len(committed), len(failed), jobs)
    return Status.SUCCESS, None


def record_refused_connection(context: NodeContext, address: str) -> None:
    """A connection from an address outside ``scp.allowed_networks`` was closed before any association."""
    logger.warning("connection from %s refused: address not allowed", address)
    try:
        with context.session_factory.begin() as session:
            repository.record_audit(session, AuditKind.CONNECTION_REFUSED, None, address, "address not allowed")
    except SQLAlchemyError as exc:
        logger.error("could not record a refused connection: %s", type(exc).__name__)


def handle_aborted(event: Event, context: NodeContext) -> None:
    """An aborted association completes nothing early; the stability fallback applies."""
    context.associations.pop(id(event.assoc))
