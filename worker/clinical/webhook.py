"""The webhook body for a pager or chat bridge, and its signature.

The body carries no patient data: the job id, a digest of the Study Instance UID, the urgency, the labels and a link
to the dashboard (where a login is needed to see more). A receiver verifies

    X-CXR-Signature: sha256=<hex HMAC-SHA256(secret, "<X-CXR-Timestamp>.<raw body>")>

and rejects a timestamp older than it allows (a replay), and a repeated X-CXR-Message-Id (a retry it already took).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Mapping

from config.privacy import uid_digest
from db.models import MessagePurpose
from worker.clinical.report import ResultReport

SIGNATURE_HEADER = "X-CXR-Signature"
TIMESTAMP_HEADER = "X-CXR-Timestamp"
MESSAGE_ID_HEADER = "X-CXR-Message-Id"


def webhook_body(report: ResultReport, purpose: MessagePurpose, message_id: str, dashboard_url: str) -> bytes:
    event = {MessagePurpose.REMINDER: "reminder", MessagePurpose.RETRACTION: "retraction"}.get(purpose, "result")
    body = {
        "event": event,
        "message_id": message_id,
        "job_id": report.job_id,
        "study": uid_digest(report.study_instance_uid),
        "urgency": report.urgency.value,
        "critical_labels": list(report.critical_labels),
        "labels": list(dict.fromkeys(f.label for f in report.findings)),
        "dashboard": f"{dashboard_url.rstrip('/')}/studies/{report.study_id}" if dashboard_url else None,
    }
    return json.dumps(body, separators=(",", ":"), sort_keys=True).encode()


def sign(secret: str, body: bytes, timestamp: int | None = None) -> dict[str, str]:
    """The signature and timestamp headers for ``body``."""
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    mac = hmac.new(secret.encode(), stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return {TIMESTAMP_HEADER: stamp, SIGNATURE_HEADER: f"sha256={mac}"}


def verify(
    secret: str, body: bytes, headers: Mapping[str, str], max_age_s: float = 300.0, now: float | None = None
) -> bool:
    """What a receiver does: the signature matches and the timestamp is recent (header names in any case)."""
    by_name = {name.lower(): value for name, value in headers.items()}
    stamp = by_name.get(TIMESTAMP_HEADER.lower(), "")
    if not stamp.isdigit() or abs((time.time() if now is None else now) - int(stamp)) > max_age_s:
        return False
    expected = sign(secret, body, int(stamp))[SIGNATURE_HEADER]
    return hmac.compare_digest(expected, by_name.get(SIGNATURE_HEADER.lower(), ""))
