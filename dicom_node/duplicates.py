"""A SOP Instance UID received again: the same instance (kept as it was), a new revision of it (a corrected image or
header: kept beside the first and analysed again), or one that cannot be taken because the UID is another study's.
The spooled file of a recorded instance is never replaced in place."""

from __future__ import annotations

import enum
import logging
from pathlib import Path

import pydicom

from db.studies import InstanceLocation
from dicom_node.validation import Refusal, Status

logger = logging.getLogger(__name__)

IN_OTHER_STUDY = Refusal(Status.UID_IN_OTHER_STUDY, "SOP Instance UID already stored in another study")


class Resend(enum.Enum):
    SAME = "same"
    """The instance already kept (or its file was purged and cannot be compared): nothing to do."""
    REVISED = "revised"
    """Other pixel data or other header values: a new revision."""


def same_instance(received: Path, spooled: Path) -> bool:
    """The same data set: equal headers and, in the same transfer syntax, equal pixel data. A re-send in another
    transfer syntax with the same header is the same instance, encoded otherwise."""
    first = pydicom.dcmread(spooled, stop_before_pixels=True)
    again = pydicom.dcmread(received, stop_before_pixels=True)
    if first != again:
        return False
    if first.file_meta.TransferSyntaxUID != again.file_meta.TransferSyntaxUID:
        return True
    pixels = [pydicom.dcmread(path).get("PixelData") for path in (spooled, received)]
    return bool(pixels[0] == pixels[1])


def judge_resend(received: Path, study_instance_uid: str, known: InstanceLocation) -> Refusal | Resend:
    """What a re-send is: the refusal for a UID under another study, else the same instance or a revision. Only
    header values are compared; none is logged."""
    if known.study_instance_uid != study_instance_uid:
        return IN_OTHER_STUDY
    if not known.spool_path.is_file():
        return Resend.SAME  # retention removed it: the record stands, the re-send adds nothing
    try:
        return Resend.SAME if same_instance(received, known.spool_path) else Resend.REVISED
    except Exception as exc:  # a spooled file that no longer reads: the re-send is the one to keep
        logger.warning("re-sent instance not compared (%s): kept as a new revision", type(exc).__name__)
        return Resend.REVISED
