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
from db.models import RejectionReason, utcnow
from db.rejections import reject_instances
from dicom_node.validation import Status

logger = logging.getLogger(__name__)


def rejection_reason(ds: Dataset) -> RejectionReason | None:
    """The note's title when it is one of the rejection reasons (``db.models.RejectionReason``)."""
    title = ds.get("ConceptNameCodeSequence")
    if not title:
        return None
    item = title[0]
    if str(item.get("CodingSchemeDesignator", "")) != "DCM":
        return None
    return RejectionReason.from_code(str(item.get("CodeValue", "")))


def referenced_instances(ds: Dataset) -> Iterator[str]:
    """Every SOP Instance UID a document's evidence names: what an IOCM note rejects, what our SR was made from."""
    for evidence in ("CurrentRequestedProcedureEvidenceSequence", "IdenticalDocumentsSequence"):
        for study in ds.get(evidence, []):
            for series in study.get("ReferencedSeriesSequence", []):
                for item in series.get("ReferencedSOPSequence", []):
                    yield str(item.ReferencedSOPInstanceUID)


def apply_note(ds: Dataset, session_factory: SessionFactory, completion_delay_s: float) -> tuple[int, list[int]]:
    """(DIMSE status, study ids to complete again) for a received Key Object Selection document."""
    reason = rejection_reason(ds)
    if reason is None:
        logger.info("key object selection received that is not a rejection note: acknowledged, ignored")
        return Status.SUCCESS, []
    uids = sorted(set(referenced_instances(ds)))
    try:
        with session_factory.begin() as session:
            outcome = reject_instances(session, uids, reason.code, utcnow() + timedelta(seconds=completion_delay_s))
    except SQLAlchemyError as exc:
        logger.error("rejection note not applied: %s", describe_database_error(exc))
        return Status.OUT_OF_RESOURCES, []
    logger.warning(
        "rejection note %s (%s): %d of %d referenced instances rejected, %d queued jobs cancelled",
        reason.code,
        reason.meaning,
        outcome.rejected,
        len(uids),
        len(outcome.cancelled_jobs),
    )
    return Status.SUCCESS, list(outcome.study_ids)
