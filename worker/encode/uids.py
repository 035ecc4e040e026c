"""Deterministic result UIDs: the same source, model and object kind always give the same UID.

A name-based (SHA-1, version 5) UUID of the parts, written as a ``2.25.<integer>`` UID (PS3.5 B.2). Note that
``pydicom.uid.generate_uid(prefix=None, entropy_srcs=...)`` ignores ``entropy_srcs`` and returns a random UUID, so it
cannot serve here. A re-run or a re-delivery of identical input yields identical objects, and a PACS de-duplicates them.
"""

from __future__ import annotations

import enum
import uuid

from pydicom.uid import UID

# Fixed for the life of the project: changing it would change every result UID ever issued.
NAMESPACE = uuid.UUID("6f1d3c3e-6a0b-5d43-9a7e-2c1b8f0e9d11")
SEPARATOR = "\x1f"  # unit separator: cannot occur in a UID or a model id, so ("ab", "c") != ("a", "bc")


class UIDKind(enum.StrEnum):
    SR_SERIES = "sr-series"
    SR_INSTANCE = "sr-instance"
    SC_SERIES = "sc-series"
    SC_INSTANCE = "sc-instance"
    GSPS_SERIES = "gsps-series"
    GSPS_INSTANCE = "gsps-instance"
    SEG_SERIES = "seg-series"
    SEG_INSTANCE = "seg-instance"
    SEG_DIMENSIONS = "seg-dimensions"
    KOS_SERIES = "kos-series"
    KOS_INSTANCE = "kos-instance"
    TRACKING = "tracking"
    DEVICE = "device"
    ALGORITHM = "algorithm"
    FHIR = "fhir"  # the fullUrl and identifier of each entry of a result's FHIR Bundle


def derive_uid(kind: UIDKind, *parts: str) -> UID:
    """A UID unique to (kind, parts); the order of ``parts`` matters, so callers pass them in a fixed order."""
    if not parts:
        raise ValueError("a derived UID needs at least one source part")
    name = SEPARATOR.join([kind.value, *parts])
    return UID(f"2.25.{uuid.uuid5(NAMESPACE, name).int}")


def source_token(sop_instance_uid: str, revision: int = 1, generation: int = 0) -> str:
    """A source as result UIDs name it: its SOP Instance UID, its revision after the first (a corrected image gives
    new result objects), and the study's generation after a retraction (objects a rejection KOS withdrew are never
    sent again under the same UIDs). The first revision of the first generation keeps the UIDs it always had."""
    token = sop_instance_uid if revision == 1 else f"{sop_instance_uid}{SEPARATOR}r{revision}"
    return token if generation == 0 else f"{token}{SEPARATOR}g{generation}"


def finding_tracking_uid(source_uid: str, output_key: str, index: int) -> UID:
    """The Tracking Unique Identifier of the study's finding number ``index`` (0-based) found on ``source_uid``: its
    SR measurement group and its SEG segment carry the same one."""
    return derive_uid(UIDKind.TRACKING, source_uid, output_key, str(index))
