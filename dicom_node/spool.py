"""The spool: received instances, written durably under paths built only from validated UIDs.

Write order: a temporary file in ``.incoming``, fsync, atomic rename into ``<study>/<sop>.dcm``, fsync of the
directory. A crash at any point leaves either no file or a complete one; never a partial file under a final name.
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
from pathlib import Path

logger = logging.getLogger(__name__)

_UID = re.compile(r"[0-9]+(\.[0-9]+)*")
MAX_UID_LENGTH = 64


def is_valid_uid(value: object) -> bool:
    """Digits and dots, no empty component, at most 64 characters: safe as a path component and a DICOM UI."""
    return isinstance(value, str) and 0 < len(value) <= MAX_UID_LENGTH and _UID.fullmatch(value) is not None


class InvalidUIDError(ValueError):
    pass


class Spool:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.incoming = root / ".incoming"
        self.incoming.mkdir(parents=True, exist_ok=True)

    def path_for(self, study_uid: str, sop_uid: str) -> Path:
        for uid in (study_uid, sop_uid):
            if not is_valid_uid(uid):
                raise InvalidUIDError("UID is not a valid DICOM UID")
        return self.root / study_uid / f"{sop_uid}.dcm"

    def store(self, study_uid: str, sop_uid: str, data: bytes) -> Path:
        """Durably write ``data``; returns the final path. Raises OSError on any write failure, leaving nothing."""
        final = self.path_for(study_uid, sop_uid)
        descriptor, temporary = tempfile.mkstemp(dir=self.incoming, suffix=".part")
        try:
            with os.fdopen(descriptor, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            final.parent.mkdir(exist_ok=True)
            os.replace(temporary, final)
            _fsync_directory(final.parent)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        return final

    def discard(self, path: Path) -> None:
        """Remove a spooled file whose database row could not be committed."""
        path.unlink(missing_ok=True)


def _fsync_directory(directory: Path) -> None:
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
