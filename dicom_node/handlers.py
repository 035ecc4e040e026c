"""C-ECHO and C-STORE handlers. They persist, record and return a DIMSE status; they never raise to the peer.

An instance is acknowledged (0x0000) only after its file is fsynced into the spool and its row is committed.
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import timedelta

from pydicom.dataset import Dataset
from typing import cast

from pynetdicom.dimse_primitives import C_STORE
from pynetdicom.events import Event
from sqlalchemy.exc import SQLAlchemyError

from db import repository
from db.engine import SessionFactory
from db.models import utcnow
from db.privacy import uid_digest
from db.records import InstanceFacts
from db.settings import ScpSettings
from dicom_node.spool import Spool, is_valid_uid

logger = logging.getLogger(__name__)


class Status:
    """C-STORE statuses we answer with (PS3.4 Annex B.2.3)."""

    SUCCESS = 0x0000
    OUT_OF_RESOURCES = 0xA700
    DATASET_DOES_NOT_MATCH_SOP_CLASS = 0xA900
    CANNOT_UNDERSTAND = 0xC000
    CANNOT_PARSE = 0xC210


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


def _facts(event: Event, ds: Dataset, context: NodeContext) -> InstanceFacts:
    study_uid, sop_uid = str(ds.StudyInstanceUID), str(ds.SOPInstanceUID)
    return InstanceFacts(
        study_instance_uid=study_uid,
        series_instance_uid=str(ds.SeriesInstanceUID),
        sop_instance_uid=sop_uid,
        sop_class_uid=str(_request(event).AffectedSOPClassUID),
        transfer_syntax_uid=str(event.context.transfer_syntax),
        modality=_text(ds, "Modality", 16),
        body_part_examined=_text(ds, "BodyPartExamined", 16),
        view_position=_text(ds, "ViewPosition", 16),
        study_description=_text(ds, "StudyDescription"),
        calling_ae_title=str(event.assoc.requestor.ae_title).strip() or None,
        spool_path=context.spool.path_for(study_uid, sop_uid),
    )


def _request(event: Event) -> C_STORE:
    return cast(C_STORE, event.request)


def _check_identity(event: Event, ds: Dataset) -> int | None:
    """A status when the instance's identifiers are unusable; None when it may be stored."""
    requested = str(_request(event).AffectedSOPInstanceUID)
    if not is_valid_uid(requested):
        return Status.CANNOT_UNDERSTAND
    if str(ds.get("SOPInstanceUID", "")) != requested:
        return Status.DATASET_DOES_NOT_MATCH_SOP_CLASS
    if str(ds.get("SOPClassUID", "")) != str(_request(event).AffectedSOPClassUID):
        return Status.DATASET_DOES_NOT_MATCH_SOP_CLASS
    for keyword in ("StudyInstanceUID", "SeriesInstanceUID"):
        if not is_valid_uid(str(ds.get(keyword, ""))):
            return Status.CANNOT_UNDERSTAND
    return None


def handle_store(event: Event, context: NodeContext) -> int:
    try:
        ds = event.dataset
        rejected = _check_identity(event, ds)
        facts = _facts(event, ds, context) if rejected is None else None
    except Exception as exc:  # a dataset pydicom cannot parse: tell the peer, keep serving
        logger.warning("C-STORE rejected: dataset cannot be parsed (%s)", type(exc).__name__)
        return Status.CANNOT_PARSE
    if facts is None:
        logger.warning("C-STORE rejected with status 0x%04X: unusable identifiers", rejected)
        return rejected if rejected is not None else Status.CANNOT_UNDERSTAND
    return _persist(event, facts, context)


def _persist(event: Event, facts: InstanceFacts, context: NodeContext) -> int:
    digest = uid_digest(facts.sop_instance_uid)
    try:
        path = context.spool.store(facts.study_instance_uid, facts.sop_instance_uid, event.encoded_dataset())
    except OSError as exc:
        logger.error("instance %s not stored: spool write failed (%s)", digest, exc.strerror or type(exc).__name__)
        return Status.OUT_OF_RESOURCES
    fallback = utcnow() + timedelta(seconds=context.settings.completion_stability_s)
    try:
        with context.session_factory.begin() as session:
            outcome = repository.record_instance(session, facts, fallback)
    except SQLAlchemyError as exc:
        logger.error("instance %s not recorded: database error (%s)", digest, type(exc).__name__)
        context.spool.discard(path)
        return Status.OUT_OF_RESOURCES
    context.associations.add(id(event.assoc), outcome.study_id)
    logger.info("stored instance %s (study row %d, %s)", digest, outcome.study_id, "new" if outcome.created else "dup")
    return Status.SUCCESS


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


def handle_aborted(event: Event, context: NodeContext) -> None:
    """An aborted association completes nothing early; the stability fallback applies."""
    context.associations.pop(id(event.assoc))
