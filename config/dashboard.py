"""The ``[dashboard]`` table: the admin web page, its users, its JSON API and /metrics."""

from __future__ import annotations

from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, field_validator

from config.section import Section


class DashboardUser(Section):
    """Someone who may log in to the dashboard. Make the hash with ``cxr dashboard hash-password``."""

    name: str = Field(min_length=1, max_length=64)
    password_hash: SecretStr
    """An argon2id hash (``$argon2id$...``); never the password itself."""
    role: Literal["viewer", "operator"] = "viewer"
    """viewer: read only. operator: may also requeue, re-send, cancel, pause destinations and reveal PHI."""


class DashboardSettings(Section):
    """The admin web page, its JSON API and /metrics."""

    enabled: bool = True
    """Whether ``cxr serve`` starts it."""
    host: str = "127.0.0.1"
    """Loopback by default: put a TLS reverse proxy in front to reach it from elsewhere."""
    port: int = Field(8080, ge=0, le=65535)
    users: list[DashboardUser] = Field(default_factory=list)
    """None configured: an ``admin`` operator is created with a random password written to
    ``<data_dir>/dashboard-admin-password`` (mode 0600)."""
    secret_key: SecretStr | None = None
    """Signs session cookies; unset, a random key is kept in ``<data_dir>/dashboard-secret`` (mode 0600)."""
    session_max_age_s: int = Field(8 * 3600, ge=60)
    secure_cookies: bool = False
    """Mark cookies Secure (set this when the dashboard is served over HTTPS)."""
    metrics_token: SecretStr | None = None
    """When set, /metrics also accepts ``Authorization: Bearer <token>`` (Prometheus' ``authorization`` block);
    otherwise it needs a logged-in session like every page."""
    echo_interval_s: float = Field(60.0, gt=0)
    """How often each destination is C-ECHOed for the health column."""
    upload_max_bytes: int = Field(200 * 1024 * 1024, ge=1024)
    login_max_failures: int = Field(5, ge=1)
    """Failed logins for one name, or from one address, within ``login_lockout_s`` before further attempts are refused
    unchecked (429) until the window has passed."""
    login_lockout_s: float = Field(900.0, gt=0)
    time_zone: str = ""
    """IANA name (``Europe/Berlin``) the pages show times in, with the zone's abbreviation; empty: the host's."""
    free_space_warning_gb: float = Field(10.0, ge=0)
    """The overview warns when the data directory's file system has less free space than this."""

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, name: str) -> str:
        if name:
            try:
                ZoneInfo(name)
            except (ZoneInfoNotFoundError, ValueError) as exc:
                raise ValueError(f"unknown time zone {name!r} (an IANA name such as Europe/Berlin)") from exc
        return name
