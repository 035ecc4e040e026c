"""Ingest: a received file validated, adopted into the spool and recorded. The one way an instance enters the node.

The C-STORE handler calls ``ingest`` for each data set it received, and the dashboard's upload for each file. An
instance is acknowledged (0x0000) only after its file is fsynced into the spool and its row is committed.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path

from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.uid import UID
from sqlalchemy.exc import SQLAlchemyError

from atna.messages import AuditSink
from config.privacy import accession_digest, uid_digest
from config.settings import ScpSettings, Settings, site_digest_key
from db import studies
from db.engine import SessionFactory
from db.errors import describe_database_error
from db.models import utcnow
from db.studies import InstanceFacts
from dicom_node.admission import AssociationSlots
from dicom_node.completion import CompletionMonitor, Enqueue
from dicom_node.contexts import KEY_OBJECT_SELECTION, TRANSFER_SYNTAXES, accepted_storage_classes
from dicom_node.duplicates import IN_OTHER_STUDY, Resend, judge_resend
from dicom_node.rejection import apply_note
from dicom_node.rules import patient_age_years
from dicom_node.senders import SenderHabits
from dicom_node.spool import AlreadySpooledError, Spool
from dicom_node.validation import Refusal, Status, check_identity, check_pixels, check_size, read_received

logger = logging.getLogger(__name__)


class UnreadableFileError(ValueError):
    """A file with no DICOM file meta information to say what it holds."""


@dataclass
class AssociationStudies:
    """Which studies each open association has stored instances into, and how many of each SOP class: its release
    completes them, and the audit trail reports them."""

    _by_association: dict[int, dict[int, Counter[str]]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, association_id: int, study_id: int, sop_class_uid: str) -> None:
        with self._lock:
            studies = self._by_association.setdefault(association_id, {})
            studies.setdefault(study_id, Counter())[sop_class_uid] += 1

    def pop(self, association_id: int) -> dict[int, Counter[str]]:
        """Study id → SOP Class UID → instances stored, for the association (now over)."""
        with self._lock:
            return self._by_association.pop(association_id, {})


@dataclass
class NodeContext:
    """Dependencies of ingest and the handlers, bound explicitly when the server (or the dashboard) starts."""

    settings: ScpSettings
    spool: Spool
    session_factory: SessionFactory
    associations: AssociationStudies = field(default_factory=AssociationStudies)
    senders: SenderHabits = field(init=False)
    """How long each sender's released studies wait (``dicom_node.senders``), from the settings."""
    slots: AssociationSlots | None = None
    """Association admission (the SCP's); None where nothing associates (the dashboard's upload)."""
    complete_studies: Callable[[], object] | None = None
    """Turns due studies into jobs at once (for a whole-study arrival); None leaves it to the completion monitor."""
    completion_due: Callable[[datetime], None] | None = None
    """Tells the completion monitor when a release made studies due (``CompletionMonitor.wake_at``)."""
    stored: Callable[[int], None] | None = None
    """Told each study an instance was stored into (``StoredNotices.notify``: early analysis); None when it is off."""
    atna: AuditSink | None = None
    """Where security audit messages go (``[atna]``); None when no collector is configured."""
    digest_key: str = ""
    """Keys the accession digest the study row keeps for search (``config.settings.site_digest_key``)."""

    def __post_init__(self) -> None:
        self.senders = SenderHabits(self.settings.completion_debounce_s, self.settings.completion_learn_senders)

    @classmethod
    def for_uploads(cls, settings: Settings, session_factory: SessionFactory, enqueue: Enqueue) -> NodeContext:
        """Ingest outside the SCP (the dashboard's upload): each study is whole on arrival and becomes a job at once."""
        completion = CompletionMonitor(
            session_factory, enqueue, settings.detector, 1.0, settings.rules, settings.worker.queue_lease_s
        )
        return cls(
            settings=settings.scp,
            spool=Spool(settings.spool_dir),
            session_factory=session_factory,
            complete_studies=completion.run_once,
            digest_key=site_digest_key(settings),
        )


@dataclass(frozen=True)
class Arrival:
    """How a data set reached us: over DIMSE (from the request and context) or by upload (from its file meta)."""

    sop_class_uid: str
    sop_instance_uid: str
    transfer_syntax: UID
    calling_ae_title: str | None
    high_priority: bool = False
    """The C-STORE request's Priority was HIGH (0x0001)."""
    whole_study: bool = False
    """The file is a study on its own (an upload): it completes now, not after an association's release."""

    @classmethod
    def from_file_meta(cls, path: Path, calling_ae_title: str) -> Arrival:
        """An uploaded file's arrival, read from its file meta information."""
        try:
            ds = dcmread(path, stop_before_pixels=True)
        except (InvalidDicomError, OSError, ValueError) as exc:
            raise UnreadableFileError("not a DICOM file") from exc
        if "TransferSyntaxUID" not in ds.file_meta or "SOPClassUID" not in ds or "SOPInstanceUID" not in ds:
            raise UnreadableFileError("a DICOM file needs its file meta information and SOP Class/Instance UIDs")
        return cls(
            str(ds.SOPClassUID),
            str(ds.SOPInstanceUID),
            ds.file_meta.TransferSyntaxUID,
            calling_ae_title,
            whole_study=True,
        )


@dataclass(frozen=True)
class Ingested:
    status: int | Dataset
    """The DIMSE status to answer (0x0000 only once the file is fsynced and its row committed)."""
    study_id: int | None = None


def _text(ds: Dataset, keyword: str, limit: int = 64) -> str | None:
    value = ds.get(keyword)
    return str(value).strip()[:limit] or None if value is not None else None


def _facts(arrival: Arrival, ds: Dataset, context: NodeContext) -> InstanceFacts:
    study_uid, sop_uid = str(ds.StudyInstanceUID), str(ds.SOPInstanceUID)
    accession = _text(ds, "AccessionNumber", 16)  # read for its digest only; never stored or logged
    return InstanceFacts(
        study_instance_uid=study_uid,
        series_instance_uid=str(ds.SeriesInstanceUID),
        sop_instance_uid=sop_uid,
        sop_class_uid=arrival.sop_class_uid,
        transfer_syntax_uid=str(arrival.transfer_syntax),
        modality=_text(ds, "Modality", 16),
        body_part_examined=_text(ds, "BodyPartExamined", 16),
        view_position=_text(ds, "ViewPosition", 16),
        manufacturer=_text(ds, "Manufacturer"),
        manufacturer_model_name=_text(ds, "ManufacturerModelName"),
        study_description=_text(ds, "StudyDescription"),
        calling_ae_title=arrival.calling_ae_title,
        spool_path=context.spool.path_for(study_uid, sop_uid),
        # Only the age in years is kept: the birth date is read here and never stored.
        patient_age_years=patient_age_years(
            _text(ds, "PatientAge"), _text(ds, "PatientBirthDate"), _text(ds, "StudyDate")
        ),
        stat=_is_stat(arrival, context.settings),
        accession_digest=accession_digest(accession, context.digest_key) if accession else None,
    )


def _is_stat(arrival: Arrival, settings: ScpSettings) -> bool:
    return (arrival.high_priority and settings.honour_dimse_priority) or (
        arrival.calling_ae_title is not None and arrival.calling_ae_title in settings.stat_calling_aets
    )


def _negotiable(arrival: Arrival, settings: ScpSettings) -> Refusal | None:
    """What association negotiation checks for a C-STORE, checked again for an arrival that had none (an upload)."""
    if arrival.sop_class_uid not in accepted_storage_classes(settings):
        return Refusal(Status.SOP_CLASS_NOT_SUPPORTED, "only CR and DX images are accepted")
    if arrival.transfer_syntax not in TRANSFER_SYNTAXES:
        return Refusal(Status.CANNOT_UNDERSTAND, f"transfer syntax {arrival.transfer_syntax} not supported")
    return None


def ingest(received: Path, arrival: Arrival, context: NodeContext) -> Ingested:
    """Validate a received file, adopt it into the spool and record it: C-STORE and the dashboard's upload."""
    try:
        refusal = _negotiable(arrival, context.settings)
        facts = None
        refusal = refusal or check_size(received, context.settings.max_dataset_bytes)
        if refusal is None:
            ds, pixel_length = read_received(received)
            refusal = check_identity(ds, arrival.sop_class_uid, arrival.sop_instance_uid)
            if refusal is None and arrival.sop_class_uid == KEY_OBJECT_SELECTION:
                return _rejection_note(ds, context)
            refusal = refusal or check_pixels(ds, arrival.transfer_syntax, pixel_length)
            facts = _facts(arrival, ds, context) if refusal is None else None
    except Exception as exc:  # a data set pydicom cannot parse: tell the peer, keep serving
        logger.warning("C-STORE refused: data set cannot be parsed (%s)", type(exc).__name__)
        return Ingested(Refusal(Status.CANNOT_PARSE, "data set cannot be parsed").as_response())
    if refusal is not None or facts is None:
        refusal = refusal or Refusal(Status.CANNOT_UNDERSTAND, "unusable identifiers")
        logger.warning("C-STORE refused with 0x%04X: %s", refusal.status, refusal.comment)
        return Ingested(refusal.as_response())
    ingested = _persist(received, facts, context)
    if arrival.whole_study and ingested.study_id is not None:
        _complete_now(ingested.study_id, context)
    return ingested


def _persist(received: Path, facts: InstanceFacts, context: NodeContext) -> Ingested:
    digest = uid_digest(facts.sop_instance_uid)
    try:
        with context.session_factory() as session:
            known = studies.instance_location(session, facts.sop_instance_uid)
        if known is not None:
            return _resent(received, facts, known, context)
        try:
            path = context.spool.adopt(received, facts.study_instance_uid, facts.sop_instance_uid)
        except AlreadySpooledError:
            # A file with no row: left by a crash between the move and the commit (so never acknowledged, and this is
            # the sender's retry), or by a concurrent association about to record the same instance. Take its place.
            path = context.spool.adopt(received, facts.study_instance_uid, facts.sop_instance_uid, unrecorded=True)
    except OSError as exc:
        logger.error("instance %s not stored: spool write failed (%s)", digest, exc.strerror or type(exc).__name__)
        return Ingested(Status.OUT_OF_RESOURCES)
    except SQLAlchemyError as exc:
        logger.error("instance %s not stored: %s", digest, describe_database_error(exc))
        return Ingested(Status.OUT_OF_RESOURCES)
    return _record(path, facts, context)


def _record(path: Path, facts: InstanceFacts, context: NodeContext) -> Ingested:
    digest = uid_digest(facts.sop_instance_uid)
    fallback = utcnow() + timedelta(seconds=context.settings.completion_stability_s)
    try:
        with context.session_factory.begin() as session:
            outcome = studies.record_instance(session, facts, fallback)
    except SQLAlchemyError as exc:
        logger.error("instance %s not recorded: %s", digest, describe_database_error(exc))
        context.spool.discard(path)
        return Ingested(Status.OUT_OF_RESOURCES)
    if outcome.other_study:  # recorded under another study between our look and our write
        context.spool.discard(path)
        return _refused(IN_OTHER_STUDY, digest)
    logger.info("stored instance %s (study row %d, %s)", digest, outcome.study_id, "new" if outcome.created else "dup")
    return Ingested(Status.SUCCESS, outcome.study_id)


def _resent(received: Path, facts: InstanceFacts, known: studies.InstanceLocation, context: NodeContext) -> Ingested:
    verdict = judge_resend(received, facts.study_instance_uid, known)
    if isinstance(verdict, Refusal):
        return _refused(verdict, uid_digest(facts.sop_instance_uid))
    if verdict is Resend.REVISED:
        return _revise(received, facts, context)
    logger.info("instance %s received again, unchanged: kept as it was", uid_digest(facts.sop_instance_uid))
    return Ingested(Status.SUCCESS, known.study_id)


def _revise(received: Path, facts: InstanceFacts, context: NodeContext) -> Ingested:
    """A corrected instance: spooled beside the earlier revision, recorded as the next one; its study is completed
    and analysed again, and the new results supersede the old."""
    digest = uid_digest(facts.sop_instance_uid)
    fallback = utcnow() + timedelta(seconds=context.settings.completion_stability_s)
    path: Path | None = None
    try:
        with context.session_factory() as session:
            revision = studies.instance_revision(session, facts.sop_instance_uid) + 1
        path = context.spool.adopt(received, facts.study_instance_uid, facts.sop_instance_uid, revision=revision)
        with context.session_factory.begin() as session:
            study_id = studies.record_revision(session, replace(facts, spool_path=path), revision, fallback)
    except (OSError, SQLAlchemyError, AlreadySpooledError, studies.RevisionConflictError) as exc:
        # A concurrent revision, a full disk or a database away: transient; the sender retries.
        if path is not None and not isinstance(exc, AlreadySpooledError):
            context.spool.discard(path)
        logger.error("revision of instance %s not stored (%s)", digest, type(exc).__name__)
        return Ingested(Status.OUT_OF_RESOURCES)
    logger.info("instance %s received with other content: stored as revision %d", digest, revision)
    return Ingested(Status.SUCCESS, study_id)


def _refused(refusal: Refusal, digest: str) -> Ingested:
    logger.warning("instance %s refused with 0x%04X: %s", digest, refusal.status, refusal.comment)
    return Ingested(refusal.as_response())


def _rejection_note(ds: Dataset, context: NodeContext) -> Ingested:
    """IOCM: the note's rejected instances are marked; each study touched is completed again (a worker withdraws what
    was made from them and analyses what remains). The note itself is not kept."""
    status, study_ids = apply_note(ds, context.session_factory, context.settings.completion_debounce_s)
    if context.complete_studies is not None and study_ids:
        context.complete_studies()
    return Ingested(status)


def _complete_now(study_id: int, context: NodeContext) -> None:
    """A whole study arrived in one go: it is complete now, not after an association debounce."""
    with context.session_factory.begin() as session:
        studies.schedule_completion(session, [study_id], utcnow() - timedelta(seconds=1))
    if context.complete_studies is not None:
        context.complete_studies()
