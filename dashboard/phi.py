"""Revealing a study's patient identity to an operator, on request, audited.

The database stores no patient attribute. A reveal reads them from the spooled DICOM header (the instance itself, which
the node must keep anyway), writes who looked at which study to the audit log, and returns them for one response.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from atna.events import patient_record_read
from dashboard import queries
from dashboard.auth import User
from dashboard.services import DashboardServices
from db import audit, studies
from db.models import AuditKind
from dicom_node.spool import read_spooled_text

logger = logging.getLogger(__name__)

IDENTITY_KEYWORDS = (
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "AccessionNumber",
    "StudyInstanceUID",
    "StudyDate",
    "ReferringPhysicianName",
)


@dataclass(frozen=True)
class PatientIdentity:
    patient_name: str | None
    patient_id: str | None
    patient_birth_date: str | None
    accession_number: str | None
    study_instance_uid: str | None
    study_date: str | None
    referring_physician: str | None
    available: bool
    """False when the spooled instance is gone (purged); the audit row is written all the same."""


def _read_identity(path: str | None) -> PatientIdentity:
    header = read_spooled_text(path, IDENTITY_KEYWORDS)
    if header is None:
        return PatientIdentity(None, None, None, None, None, None, None, available=False)
    name, patient_id, birth_date, accession, study_uid, study_date, referrer = (header[k] for k in IDENTITY_KEYWORDS)
    return PatientIdentity(name, patient_id, birth_date, accession, study_uid, study_date, referrer, available=True)


def reveal_identity(services: DashboardServices, study_id: int, user: User, client: str | None) -> PatientIdentity:
    with services.session_factory.begin() as session:
        queries.study_detail(session, study_id)  # raises NotFoundError for an unknown study
        path = studies.first_instance(session, study_id)[1]
        audit.record_audit(session, AuditKind.PHI_REVEALED, None, client, f"study {study_id}", actor=user.name)
    logger.info("patient identity of study %d revealed to %s", study_id, user.name)
    identity = _read_identity(path)
    if identity.patient_id is not None:
        services.audit(
            patient_record_read(user.name, client, services.application, identity.patient_id, identity.patient_name)
        )
    return identity
