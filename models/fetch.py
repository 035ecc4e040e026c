"""Download a published weight file, resumably, and keep it only if its sha256 is the one expected.

The bytes go to ``<file>.part`` beside the destination; an interrupted transfer continues from there with an HTTP
Range request (a server that ignores it sends the whole file again, and the part restarts). Once complete, the digest
is checked: a match is renamed into place, a mismatch is deleted and refused, so a wrong file never sits where a
worker would load it. ``copy_in`` does the same for a copy an admin brought in by hand on an air-gapped site.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import shutil
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

CHUNK = 1 << 20
TIMEOUT_S = 60.0

Progress = Callable[[int, int | None], None]
"""Called with (bytes so far, total bytes or None when the server does not say)."""


class DigestMismatchError(ValueError):
    """The file's sha256 is not the expected one; it was removed."""


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as source:
        while block := source.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


def _accept(part: Path, destination: Path, sha256: str) -> Path:
    actual = file_sha256(part)
    if actual != sha256.lower():
        part.unlink()
        raise DigestMismatchError(
            f"{destination.name}: sha256 {actual} is not the expected {sha256.lower()}; the file was removed"
        )
    os.replace(part, destination)
    return destination


def download(url: str, destination: Path, sha256: str, progress: Progress | None = None) -> Path:
    """``url`` to ``destination``, resuming ``<destination>.part``; raises DigestMismatchError (nothing left behind)
    or OSError (the part is kept for the next try)."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    part = destination.with_name(destination.name + ".part")
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
            have, total = _receive(response, part, have, progress)
    except urllib.error.HTTPError as exc:
        if exc.code != 416 or not have:  # 416: the part already holds the whole file
            raise
        total = have
    except http.client.HTTPException as exc:  # the connection closed early: keep the part for the next run
        raise OSError(
            f"{destination.name}: the transfer broke off ({type(exc).__name__}); run the command again"
        ) from exc
    if total is not None and have < total:
        raise OSError(f"{destination.name}: the transfer ended at {have} of {total} bytes; run the command again")
    return _accept(part, destination, sha256)


def _receive(
    response: http.client.HTTPResponse, part: Path, have: int, progress: Progress | None
) -> tuple[int, int | None]:
    """Append (206) or write afresh (200) the body to ``part``; returns (bytes in the part, total or None)."""
    resumed = have > 0 and response.status == 206
    if not resumed:
        have = 0
    length = response.headers.get("Content-Length")
    total = have + int(length) if length is not None else None
    with part.open("ab" if resumed else "wb") as sink:
        try:
            while block := response.read(CHUNK):
                sink.write(block)
                have += len(block)
                if progress is not None:
                    progress(have, total)
        finally:
            sink.flush()
            os.fsync(sink.fileno())
    return have, total


def copy_in(source: Path, destination: Path, sha256: str) -> Path:
    """A file brought in by hand (``--from``): copied beside the destination, checked, then moved into place."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    part = destination.with_name(destination.name + ".part")
    shutil.copyfile(source, part)
    return _accept(part, destination, sha256)
