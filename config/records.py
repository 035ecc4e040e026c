"""What the node keeps, and for how long (retention), and whom it tells about access (the security audit trail):
the ``[retention]`` and ``[atna]`` tables."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from config.section import Section


class RetentionSettings(Section):
    """What the sweeper removes, and when: spooled instances (the pixel data), our result files, whole studies'
    records, the audit trail. Each is off by default; nothing a study still in progress needs is ever removed
    (completion pending, a job not in a terminal state, a delivery not settled)."""

    purge_after_delivery: bool = False
    """Remove a study's spooled files once its latest job is delivered (or completed, with no destination)."""
    spool_days: float | None = Field(None, gt=0)
    """Remove spooled files older than this many days whatever became of them (never while a job is in progress)."""
    results_days: float | None = Field(None, gt=0)
    """Remove our result objects' files (SR, SC, GSPS, SEG, KOS) this many days after their job finished; their
    records stay, and a dead-lettered one can then no longer be re-sent (requeue the job instead)."""
    records_days: float | None = Field(None, gt=0)
    """Delete every record of a study (and its remaining files) once nothing has happened to it for this many days.
    Results derive their UIDs and message ids from their inputs, so a study the PACS sends again later gets the same
    objects and message ids, which the receivers recognise."""
    audit_days: float | None = Field(None, gt=0)
    """Delete audit trail rows older than this. Keep it as long as the site's policy requires (often years)."""


class AtnaSettings(Section):
    """The security audit trail to the site's audit repository (IHE ATNA): DICOM audit messages (PS3.15 A.5) over
    syslog. Off until ``host`` is set; the database audit trail is kept either way."""

    host: str | None = None
    """The collector (an ATNA audit record repository, or rsyslog)."""
    port: int = Field(6514, ge=1, le=65535)
    """6514 is syslog over TLS (RFC 5425); plain syslog over TCP or UDP is usually 514."""
    transport: Literal["tls", "tcp", "udp"] = "tls"
    ca_file: Path | None = None
    """CA bundle that signed the collector's certificate (TLS); none means the system's."""
    cert_file: Path | None = None
    """Our client certificate, for a collector that asks for one (TLS)."""
    key_file: Path | None = None
    source_id: str = Field("", max_length=64)
    """AuditSourceID; empty means the SCP's AE title."""
    enterprise_site_id: str | None = Field(None, max_length=64)
    """AuditEnterpriseSiteID: the site, as the repository knows it."""
    queue_size: int = Field(10_000, ge=10)
    """Messages held while the collector is away; beyond that the newest are dropped (and counted in the log)."""
