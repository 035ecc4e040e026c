"""Settings of where results go: DICOM destinations, and beyond DICOM urgency, the RIS (HL7 v2 over MLLP), the EHR
(FHIR R4) and webhooks.

Every endpoint has a ``name`` unique among all destinations of every kind: a delivery row names its destination, and
the name says which kind it is.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr

from config.section import Section

ObjectKind = Literal["SR", "SC", "GSPS", "SEG", "KOS"]
Mode = Literal["live", "shadow"]
DEFAULT_OBJECT_KINDS: tuple[ObjectKind, ...] = ("SR", "SC", "GSPS", "KOS")
"""What a destination receives unless it says otherwise; a SEG only where asked for (not every PACS shows it)."""


class Named(Section):
    """Every destination, of any kind: its name is unique among all of them (a delivery row names it)."""

    name: str = Field(min_length=1, max_length=64)
    mode: Mode | None = None
    """live or shadow for this destination alone; unset, it follows ``results.mode``."""


class Destination(Named):
    """A DICOM peer (usually the PACS) that receives our result objects."""

    ae_title: str = Field(min_length=1, max_length=16)
    host: str
    port: int = Field(ge=1, le=65535)
    tls: bool = False
    """Connect with TLS 1.2+, verifying the destination's certificate and host name against ``tls_ca_certificates``."""
    tls_ca_certificates: Path | None = None
    tls_certificate: Path | None = None
    """Our client certificate, for destinations that require one."""
    tls_private_key: Path | None = None
    storage_commitment: bool = False
    """Ask for Storage Commitment (N-ACTION) after storing; "delivered" is recorded on the commitment report."""
    kinds: list[ObjectKind] = Field(default_factory=lambda: list(DEFAULT_OBJECT_KINDS), min_length=1)
    """The result objects it receives (KOS: our rejection notes when results are retracted; SEG: a segmentation per
    analysed image with a boxed finding, made only when some destination asks for it)."""
    from_calling_aets: list[str] = Field(default_factory=list)
    """When set, it receives results only of studies sent by these calling AE titles."""
    return_to_sender: bool = False
    """It receives results only of studies sent by its own AE title: the results go back to the modality or PACS that
    sent the study, at this configured address (never to an address the node was not given)."""

    def takes(self, kind: str, senders: set[str]) -> bool:
        """Whether an object of ``kind`` from a study sent by ``senders`` goes here."""
        if kind not in self.kinds:
            return False
        wanted = {a.upper() for a in self.from_calling_aets} | (
            {self.ae_title.upper()} if self.return_to_sender else set()
        )
        return not wanted or bool(wanted & {s.upper() for s in senders})


DEFAULT_PATIENT_IDENTIFIER_SYSTEM = "urn:cxr-pacs-worker:patient-id"
"""A local placeholder for the URI of the site's patient identifiers (FHIR Patient.identifier.system)."""


class UrgencySettings(Section):
    """Which findings make a study critical, and how long a critical result may wait for an acknowledgement."""

    critical_thresholds: dict[str, float] = Field(default_factory=lambda: {"Pneumothorax": 0.5})
    """Label → probability at or above which a reported finding makes its study critical. Any label of the code table
    may be added; one left out is never critical."""
    acknowledge_within_s: float = Field(900.0, gt=0)
    """An unacknowledged critical result older than this turns red on the dashboard and is notified again."""


class Hl7Endpoint(Named):
    """A RIS (or interface engine) that receives an HL7 v2.5.1 ORU^R01 per result over MLLP."""

    host: str
    port: int = Field(ge=1, le=65535)
    sending_application: str = Field("CXR_AI", max_length=227)
    sending_facility: str = Field("", max_length=227)
    receiving_application: str = Field("RIS", max_length=227)
    receiving_facility: str = Field("", max_length=227)
    tls: bool = False
    """MLLP over TLS 1.2+, verifying the peer against ``tls_ca_certificates`` (else the system's CAs)."""
    tls_ca_certificates: Path | None = None
    timeout_s: float = Field(30.0, gt=0)
    """Connect, send and wait for the ACK within this time; past it the attempt counts as failed and is retried."""


class FhirEndpoint(Named):
    """An EHR's FHIR R4 server that receives a transaction Bundle per result."""

    url: str = Field(pattern=r"^https?://")
    """The server's base URL; the Bundle is POSTed to it."""
    bearer_token: SecretStr | None = None
    """Sent as ``Authorization: Bearer <token>``."""
    patient_identifier_system: str = Field("urn:cxr-pacs-worker:patient-id", pattern=r"^(urn:|https?://)")
    """The identifier system of DICOM Patient ID at this site (your MRN system's URI). The default is a local
    placeholder: set the system your EHR matches patients by."""
    tls_ca_certificates: Path | None = None
    timeout_s: float = Field(30.0, gt=0)


class WebhookEndpoint(Named):
    """A pager or chat bridge: a JSON POST without PHI, signed with HMAC-SHA256."""

    url: str = Field(pattern=r"^https?://")
    secret: SecretStr = Field(min_length=16)
    """Shared with the receiver, which checks the ``X-CXR-Signature`` header against it."""
    all_results: bool = False
    """Also post non-critical results (by default, critical ones only)."""
    dashboard_url: str = ""
    """Public base URL of the dashboard, for the link in the body (empty: no link)."""
    tls_ca_certificates: Path | None = None
    timeout_s: float = Field(10.0, gt=0)
