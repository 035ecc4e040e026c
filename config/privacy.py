"""Identifiers fit for logs and for search: keyed hashes, so records can be correlated and looked up without naming
the study, and secret files kept readable by their owner only."""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import tempfile
from pathlib import Path

DIGEST_KEY_FILE = "digest-key"
"""``<data_dir>/digest-key``: the key of the accession digest, made on first use unless ``digest_key`` is set."""


def uid_digest(uid: str, key: str = "") -> str:
    """Twelve hex digits of HMAC-SHA256(key, uid); with a site secret as key, a UID cannot be confirmed from logs."""
    return hmac.new(key.encode(), uid.encode(), hashlib.sha256).hexdigest()[:12]


def accession_digest(accession_number: str, key: str) -> str:
    """What the database keeps of an Accession Number, so the dashboard can find a study by it: 32 hex digits of
    HMAC-SHA256 under the site's secret key. Accession numbers are short and guessable; without the key, a digest
    cannot be checked against a guess."""
    message = b"accession:" + accession_number.strip().encode()
    return hmac.new(key.encode(), message, hashlib.sha256).hexdigest()[:32]


def private_file(path: Path, make: str) -> str:
    """Read a secret file, or create it readable by its owner only. Two processes starting at once agree: the file
    appears whole (written aside, then linked into place) and the second reads the first's. Where the file system
    has no hard links, it is created exclusively instead."""
    if path.is_file():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, aside = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(descriptor, "w") as handle:  # mkstemp makes it 0600
            handle.write(make + "\n")
        os.link(aside, path)
    except FileExistsError:
        return path.read_text().strip()
    except OSError:  # no hard links here (some network and overlay file systems)
        return _create_exclusively(path, make)
    finally:
        os.unlink(aside)
    return make


def _create_exclusively(path: Path, make: str) -> str:
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(descriptor, "w") as handle:
        handle.write(make + "\n")
    return make


def digest_key(data_dir: Path, configured: str | None) -> str:
    """The key of the accession digest: the configured one, else ``<data_dir>/digest-key``, made on first use.
    Every process of a node must share it (they share ``data_dir``, or set ``digest_key`` alike)."""
    if configured:
        return configured
    return private_file(data_dir / DIGEST_KEY_FILE, secrets.token_urlsafe(32))
