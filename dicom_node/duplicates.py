"""A SOP Instance UID received again: the same instance (kept as it was), or one that cannot be taken because the UID
is another study's or the content changed. The spooled file of a recorded instance is never replaced in place."""

from __future__ import annotations

import logging
from pathlib import Path

import pydicom

from db.studies import InstanceLocation
from dicom_node.validation import Refusal, Status

logger = logging.getLogger(__name__)

IN_OTHER_STUDY = Refusal(Status.UID_IN_OTHER_STUDY, "SOP Instance UID already stored in another study")
CHANGED = Refusal(Status.INSTANCE_CHANGED, "SOP Instance UID already stored with different content")


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


def judge_resend(received: Path, study_instance_uid: str, known: InstanceLocation) -> Refusal | None:
    """None when the re-send is the instance already kept (or its file was purged and cannot be compared); otherwise
    the refusal to answer. Only header values are compared; none is logged."""
    if known.study_instance_uid != study_instance_uid:
        return IN_OTHER_STUDY
    if not known.spool_path.is_file():
        return None  # retention removed it: the record stands, the re-send adds nothing
    try:
        return None if same_instance(received, known.spool_path) else CHANGED
    except Exception as exc:  # a spooled file that no longer reads: keep the record, take nothing new
        logger.warning("re-sent instance not compared: %s", type(exc).__name__)
        return CHANGED
