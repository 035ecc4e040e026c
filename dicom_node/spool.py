"""The spool: received instances, written durably under paths built only from validated UIDs.

Write order: a temporary file in ``.incoming`` (pynetdicom streams each received data set there), fsync, atomic rename
into ``<study>/<sop>.dcm``, fsync of the directory. A crash at any point leaves either no file or a complete one under
its final name; leftovers in ``.incoming`` were never acknowledged and are purged at start.
"""

from __future__ import annotations

import errno
import logging
import os
import re
import shutil
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from pydicom import dcmread
from pydicom.errors import InvalidDicomError

logger = logging.getLogger(__name__)

_UID = re.compile(r"[0-9]+(\.[0-9]+)*")
MAX_UID_LENGTH = 64


def is_valid_uid(value: object) -> bool:
    """Digits and dots, no empty component, at most 64 characters: safe as a path component and a DICOM UI."""
    return isinstance(value, str) and 0 < len(value) <= MAX_UID_LENGTH and _UID.fullmatch(value) is not None


class InvalidUIDError(ValueError):
    pass


class AlreadySpooledError(FileExistsError):
    """An instance's file is in the spool already; it is never replaced."""


class Spool:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.incoming = root / ".incoming"
        self.incoming.mkdir(parents=True, exist_ok=True)

    def path_for(self, study_uid: str, sop_uid: str, revision: int = 1) -> Path:
        """``<study>/<sop>.dcm``, and ``<sop>.r<N>.dcm`` for revision N > 1 (an earlier revision's file is never
        written over: a job may be reading it)."""
        for uid in (study_uid, sop_uid):
            if not is_valid_uid(uid):
                raise InvalidUIDError("UID is not a valid DICOM UID")
        name = f"{sop_uid}.dcm" if revision == 1 else f"{sop_uid}.r{revision}.dcm"
        return self.root / study_uid / name

    def adopt(self, received: Path, study_uid: str, sop_uid: str, unrecorded: bool = False, revision: int = 1) -> Path:
        """Durably move a completely received file into place; returns its final path. A spooled file is never
        replaced (AlreadySpooledError) unless the caller knows it is ``unrecorded``: no database row names it.
        Raises OSError on failure."""
        final = self.path_for(study_uid, sop_uid, revision)
        # A rename is atomic only within one file system; a file received elsewhere is first copied in.
        source = received if received.parent == self.incoming else self._copy_in(received)
        try:
            _fsync_file(source)
            final.parent.mkdir(exist_ok=True)
            if unrecorded:
                os.replace(source, final)
            else:
                _move_without_replacing(source, final)
        except BaseException:
            if source != received:
                source.unlink(missing_ok=True)  # our own copy; the received file stays with its owner
            raise
        _fsync_directory(final.parent)
        return final

    def discard(self, path: Path) -> None:
        """Remove a spooled file whose database row could not be committed."""
        path.unlink(missing_ok=True)

    def purge_incoming(self, older_than_s: float = 3600.0) -> int:
        """Remove partial receptions left by a crash (never acknowledged, so nothing is lost); returns the count."""
        cutoff = time.time() - older_than_s
        removed = 0
        for leftover in self.incoming.iterdir():
            if leftover.is_file() and leftover.stat().st_mtime < cutoff:
                leftover.unlink(missing_ok=True)
                removed += 1
        return removed

    def _copy_in(self, received: Path) -> Path:
        descriptor, temporary = tempfile.mkstemp(dir=self.incoming, suffix=".part")
        os.close(descriptor)
        shutil.copyfile(received, temporary)
        return Path(temporary)


def _move_without_replacing(source: Path, final: Path) -> None:
    """A hard link fails if ``final`` exists, atomically; where links are not supported, check then rename."""
    try:
        os.link(source, final)
    except FileExistsError:
        raise AlreadySpooledError(errno.EEXIST, "already spooled", str(final)) from None
    except OSError:
        if final.exists():
            raise AlreadySpooledError(errno.EEXIST, "already spooled", str(final)) from None
        os.rename(source, final)
        return
    os.unlink(source)


def _fsync_file(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _fsync_directory(directory: Path) -> None:
    _fsync_file(directory)


def read_spooled_text(path: str | Path | None, keywords: Sequence[str]) -> dict[str, str | None] | None:
    """These header attributes of a spooled instance as text (None for one absent or empty), read without its pixels;
    None when the file is gone or cannot be read. A failure is logged by its type only: the text may hold patient
    data, which is read here only for a caller that needs it (an audit message, an operator's reveal)."""
    if path is None or not Path(path).is_file():
        return None
    try:
        ds = dcmread(path, stop_before_pixels=True, specific_tags=list(keywords))
    except (InvalidDicomError, OSError) as exc:
        logger.warning("header not readable from the spool: %s", type(exc).__name__)
        return None
    return {keyword: str(value) if (value := ds.get(keyword)) not in (None, "") else None for keyword in keywords}
