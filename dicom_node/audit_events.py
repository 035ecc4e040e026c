"""The SCP's security audit messages (``atna``): refused connections and associations, and each study a peer stored
over an association. A no-op where no collector is configured (``context.atna`` is None)."""

from __future__ import annotations

import logging
from collections import Counter

from sqlalchemy.exc import SQLAlchemyError

from atna.events import StudyTransfer, instances_transferred, node_refused
from db import studies
from db.engine import SessionFactory
from db.errors import describe_database_error
from dicom_node.ingest import NodeContext
from dicom_node.spool import read_spooled_text

logger = logging.getLogger(__name__)


def audit_refused(context: NodeContext, address: str, calling_ae: str | None, reason: str) -> None:
    if context.atna is not None:
        context.atna.emit(node_refused(context.settings.ae_title, address, calling_ae, reason))


def _patient(path: str | None) -> tuple[str | None, str | None]:
    """(Patient ID, Patient's Name) from the spooled header; (None, None) when it cannot be read."""
    header = read_spooled_text(path, ("PatientID", "PatientName")) or {}
    return header.get("PatientID"), header.get("PatientName")


def study_transfer(session_factory: SessionFactory, study_id: int, sop_classes: Counter[str]) -> StudyTransfer | None:
    """What an Instances Transferred message says of a study: its UID, the SOP classes moved, and its patient, read
    from the spooled header now. None (logged) when the database cannot be read."""
    try:
        with session_factory() as session:
            study_uid, path = studies.first_instance(session, study_id)
    except SQLAlchemyError as exc:
        logger.error("audit: study %d not read: %s", study_id, describe_database_error(exc))
        return None
    patient_id, patient_name = _patient(path)
    return StudyTransfer(study_uid, sorted(sop_classes.items()), patient_id, patient_name)


def audit_received(context: NodeContext, peer: tuple[str, str], transfers: dict[int, Counter[str]]) -> None:
    """One DICOM Instances Transferred message per study the association (calling AE, address) stored."""
    if context.atna is None:
        return
    for study_id, sop_classes in transfers.items():
        study = study_transfer(context.session_factory, study_id, sop_classes)
        if study is not None:
            context.atna.emit(instances_transferred(peer, (context.settings.ae_title, None), study, received=True))
