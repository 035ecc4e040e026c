"""Identifiers fit for logs: a keyed hash of a UID, so log lines can be correlated without naming the study."""

from __future__ import annotations

import hashlib
import hmac


def uid_digest(uid: str, key: str = "") -> str:
    """Twelve hex digits of HMAC-SHA256(key, uid); with a site secret as key, a UID cannot be confirmed from logs."""
    return hmac.new(key.encode(), uid.encode(), hashlib.sha256).hexdigest()[:12]
