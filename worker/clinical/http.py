"""One HTTP POST, for FHIR and webhooks: the outcome in the same terms as a C-STORE's (sent, retry, refused)."""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

RETRYABLE_STATUSES = {408, 425, 429}
"""4xx answers that mean "later", not "never"."""


@dataclass(frozen=True)
class PostOutcome:
    status: int | None
    """The HTTP status, or None when no answer came."""
    error: str | None
    """What went wrong, from the server's own words where it gave some (an OperationOutcome's diagnostics)."""

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    @property
    def permanent_failure(self) -> bool:
        """The server understood and refused: sending the same body again cannot succeed."""
        return self.status is not None and 400 <= self.status < 500 and self.status not in RETRYABLE_STATUSES


def _server_words(body: bytes) -> str:
    """The diagnostics of an OperationOutcome, else the start of the body."""
    try:
        parsed = json.loads(body)
        issues = parsed.get("issue", []) if isinstance(parsed, dict) else []
        words = "; ".join(str(i.get("diagnostics") or i.get("code") or "") for i in issues if isinstance(i, dict))
        if words:
            return words[:300]
    except ValueError:
        pass
    return body[:300].decode("utf-8", errors="replace").strip()


def post(
    url: str, body: bytes, headers: dict[str, str], timeout_s: float, ca_certificates: Path | None = None
) -> PostOutcome:
    context = ssl.create_default_context(cafile=str(ca_certificates) if ca_certificates else None)
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout_s, context=context) as response:
            return PostOutcome(response.status, None)
    except urllib.error.HTTPError as exc:
        words = _server_words(exc.read())
        return PostOutcome(exc.code, f"HTTP {exc.code}{': ' + words if words else ''}")
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        reason = getattr(exc, "reason", exc)
        return PostOutcome(None, f"no answer ({type(reason).__name__})")
