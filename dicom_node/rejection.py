"""An IOCM rejection note received by C-STORE: a Key Object Selection document whose title (Concept Name) is one of
DICOM CID 7011's rejection reasons. The instances it references that we hold are marked rejected; the note itself is
not kept. Any other Key Object Selection (key images, say) is acknowledged and ignored."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import timedelta

from pydicom.dataset import Dataset
from sqlalchemy.exc import SQLAlchemyError

from db.engine import SessionFactory
from db.errors import describe_database_error
from db.models import utcnow
from db.rejections import reject_instances
from dicom_node.validation import Status

logger = logging.getLogger(__name__)

REJECTION_CODES = {
    "113001": "Rejected for Quality Reasons",
    "113037": "Rejected for Patient Safety Reasons",
    "113038": "Incorrect Modality Worklist Entry",
    "113039": "Data Retention Policy Expired",
}
"""DICOM CID 7011, scheme DCM: the titles that make a KOS a rejection note."""


def rejection_code(ds: Dataset) -> str | None:
    title = ds.get("ConceptNameCodeSequence")
    if not title:
        return None
    item = title[0]
    if str(item.get("CodingSchemeDesignator", "")) != "DCM":
        return None
    code = str(item.get("CodeValue", ""))
    return code if code in REJECTION_CODES else None


def referenced_instances(ds: Dataset) -> Iterator[str]:
    """Every SOP Instance UID the note's evidence names (the IOCM note lists what it rejects there)."""
    for evidence in ("CurrentRequestedProcedureEvidenceSequence", "IdenticalDocumentsSequence"):
        for study in ds.get(evidence, []):
            for series in study.get("ReferencedSeriesSequence", []):
                for item in series.get("ReferencedSOPSequence", []):
                    yield str(item.ReferencedSOPInstanceUID)


def apply_note(ds: Dataset, session_factory: SessionFactory, completion_delay_s: float) -> tuple[int, list[int]]:
    """(DIMSE status, study ids to complete again) for a received Key Object Selection document."""
    code = rejection_code(ds)
    if code is None:
        logger.info("key object selection received that is not a rejection note: acknowledged, ignored")
        return Status.SUCCESS, []
    uids = sorted(set(referenced_instances(ds)))
    try:
        with session_factory.begin() as session:
            outcome = reject_instances(session, uids, code, utcnow() + timedelta(seconds=completion_delay_s))
    except SQLAlchemyError as exc:
        logger.error("rejection note not applied: %s", describe_database_error(exc))
        return Status.OUT_OF_RESOURCES, []
    logger.warning(
        "rejection note %s (%s): %d of %d referenced instances rejected, %d queued jobs cancelled",
        code,
        REJECTION_CODES[code],
        outcome.rejected,
        len(uids),
        len(outcome.cancelled_jobs),
    )
    return Status.SUCCESS, list(outcome.study_ids)
