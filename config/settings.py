"""The one typed Settings object: read from TOML, overridden by ``CXR_*`` environment variables.

Precedence (highest first): environment (``CXR_SCP__PORT=11113``), the TOML file, the defaults below. The defaults are
the embedded deployment: SQLite for the database and for the Celery broker, both inside ``data_dir``.
"""

from __future__ import annotations

import os
import socket
import tomllib
from datetime import date
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, IPvAnyNetwork, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from config.dashboard import DashboardSettings
from config.outputs import Destination, FhirEndpoint, Hl7Endpoint, Mode, UrgencySettings, WebhookEndpoint
from config.problems import ConfigurationError, describe, unknown_environment
from config.records import AtnaSettings, RetentionSettings
from config.section import Section

CONFIG_ENV_VAR = "CXR_CONFIG"
DEFAULT_CONFIG_FILE = Path("cxr.toml")


class TlsSettings(Section):
    """DICOM TLS (PS3.15 BCP 195 profiles): TLS 1.2 or newer only. Off unless a certificate and key are given."""

    certificate: Path | None = None
    """PEM certificate (chain) presented by this side."""
    private_key: Path | None = None
    """PEM private key of that certificate."""
    ca_certificates: Path | None = None
    """PEM bundle that peers' certificates must chain to (for an SCU: the destination's CA)."""
    require_client_certificate: bool = False
    """SCP only: refuse peers that present no certificate signed by ``ca_certificates``."""

    @property
    def enabled(self) -> bool:
        return self.certificate is not None and self.private_key is not None


class ScpSettings(Section):
    """The DICOM listener that the PACS forwards studies to."""

    ae_title: str = Field("CXR_AI", min_length=1, max_length=16)
    """Our (called) AE title."""
    host: str = "0.0.0.0"
    """Address to bind."""
    port: int = Field(11112, ge=0, le=65535)
    """TCP port; 0 lets the OS choose (tests only)."""
    allowed_calling_aets: list[str] = Field(default_factory=list)
    """Calling AE titles that may associate; empty accepts any and logs a warning at start."""
    allowed_networks: list[IPvAnyNetwork] = Field(default_factory=list)
    """Source addresses (CIDR, e.g. "10.1.2.0/24") that may connect at all; empty accepts any address."""
    stat_calling_aets: list[str] = Field(default_factory=list)
    """Studies sent by these AE titles (an emergency department's modality, say) take the STAT lane."""
    honour_dimse_priority: bool = True
    """A C-STORE sent with priority HIGH puts its study in the STAT lane."""
    accept_secondary_capture: bool = False
    """Also accept Secondary Capture images into studies (stored and recorded; never analysed)."""
    completion_debounce_s: float = Field(1.0, ge=0)
    """Seconds after an association is released before its studies count as complete, for a sender seen to split a
    study across associations (4× the longest gap such senders left in ``bench/association_gaps.py``: 254 ms)."""
    completion_learn_senders: bool = True
    """A sender that sends each study over one association (a PACS's forward) has its studies complete at the
    release; once one splits a study, its studies wait ``completion_debounce_s`` (``dicom_node.senders``). False:
    every study waits the debounce."""
    completion_stability_s: float = Field(60.0, gt=0)
    """Fallback: a study with no new instance for this long is complete even if its association stays open."""
    completion_poll_s: float = Field(0.2, gt=0)
    """How often the completion monitor looks for studies that are due."""
    max_pdu_size: int = Field(1024 * 1024, ge=16384)
    """Longest PDU we accept (bytes), advertised at association. A PDU whose header claims more is refused before it
    is read: the peer gets an A-ABORT and the connection closes. Below 64 KiB, 64 KiB is enforced (an association
    request comes before any maximum is agreed). Each association holds at most one PDU in memory."""
    max_dataset_bytes: int = Field(256 * 1024 * 1024, ge=1024 * 1024)
    """Largest data set stored (after inflating a deflated one); larger ones are refused with 0xA700. The default is
    several times a large radiograph (43 x 43 cm at 0.1 mm, 16 bits: about 37 MB)."""
    processes: int = Field(0, ge=0)
    """Listening processes sharing the port (SO_REUSEPORT), so that concurrent associations use several cores; 0
    means one per core. ``maximum_associations`` is shared out among them; the kernel spreads connections by address
    and port, not by load, so a busy process may refuse (transiently) while another has room: with several processes,
    raise the limit if peers see refusals."""
    maximum_associations: int = Field(10, ge=1)
    """Concurrent associations; more are rejected (transient) so a flood cannot exhaust the node. A connection that
    has not asked for an association holds none."""
    maximum_associations_per_source: int = Field(5, ge=1)
    """Concurrent associations from one address, so that one peer cannot take every slot."""
    acse_timeout_s: float = Field(5.0, gt=0)
    """How long a new connection may take to ask for its association before it is dropped (also the wait for an
    association release)."""
    dimse_timeout_s: float = Field(60.0, gt=0)
    network_timeout_s: float = Field(60.0, gt=0)
    tls: TlsSettings = Field(default_factory=TlsSettings)


class WorkerSettings(Section):
    """Celery worker processes."""

    device: str = "auto"
    """Torch device for inference: auto (CUDA when present), cpu, cuda, cuda:N."""
    delivery_max_retries: int = Field(12, ge=0)
    """C-STORE attempts after the first before a delivery is dead-lettered. With the default backoff the last attempt
    comes 855 s (jitter at its shortest) to 1,710 s after the first: a 10-minute destination outage loses nothing."""
    resend_dead_letters_on_recovery: bool = False
    """When a destination answers C-ECHO again, the sweeper re-sends the deliveries to it whose retries ran out (each
    once at most, audited); refused ones still wait for an operator."""
    delivery_backoff_s: float = Field(2.0, gt=0)
    """Base of the exponential backoff between delivery attempts."""
    delivery_backoff_max_s: float = Field(300.0, gt=0)
    """Upper bound of one backoff delay."""
    max_attempts: int = Field(3, ge=1)
    """Analysis attempts per job; a study that keeps failing or crashing its worker is then dead-lettered."""
    queue_lease_s: float = Field(300.0, gt=0)
    """A queued job not started, or a delivery never tried, within this time is sent again (its message was lost:
    broker restart, dead worker)."""
    analysis_lease_s: float = Field(900.0, gt=0)
    """A job analysing for longer than this is presumed dead with its worker and sent again (an attempt counts)."""
    delivery_lease_s: float = Field(1200.0, gt=0)
    """A pending delivery untouched for this long is sent again; it must be longer than ``delivery_backoff_max_s``."""
    sweep_interval_s: float = Field(15.0, gt=0)
    """How often the sweeper looks for expired leases."""
    batch_max_images: int = Field(1, ge=1)
    """Dynamic batching: an analysis worker fills one detector pass with up to this many images from other queued
    jobs for the same detector. 1 turns it off; on a GPU, 16 to 64."""
    batch_wait_ms: float = Field(0.0, ge=0)
    """How long a worker waits for more queued jobs before it runs a batch that is not full."""
    early_analysis_mb: int = Field(256, ge=0)
    """Early analysis: each eligible image is analysed as soon as it is stored, while its study waits for completion,
    and the analysis worker keeps its findings and decoded pixels for the job (this many MB of pixels; the findings
    of thousands more images). 0 turns it off: the job analyses every image when the study is complete."""
    reduced_decode: bool = True
    """Decode a JPEG 2000 image only down to the resolution the detector looks at (2 to 3.5× faster for a 2,000-pixel
    radiograph and a 512-pixel detector). The overlay Secondary Capture is then drawn on that image brought back to
    full size. False decodes every image in full."""
    gpu_decode: bool = True
    """Where the analysis device is a CUDA GPU and nvImageCodec is installed (the ``gpu`` extra), decode JPEG 2000
    images there, in full (``models.j2k_gpu``); a stream it cannot take is then decoded in full on the CPU. False, or
    no such GPU: JPEG 2000 is decoded on the CPU as ``reduced_decode`` says."""
    analysis_processes: int = Field(0, ge=0)
    """Analysis workers ``cxr serve`` starts. 0: one where the device is a GPU (it batches, and holds the model once),
    and on the CPU one per core, up to 4, each computing on its share of the cores. One CPU worker uses one core for
    most of a study (decoding, encoding, writing and recording run on one thread), so the others stay idle
    (``bench/RESULTS.md``). Each process holds its own copy of the model in memory. Other deployments (systemd,
    compose) start the workers they want; ``cxr worker --threads`` gives each its share of the cores."""
    node_name: str = Field("", max_length=64)
    """How this host's workers name themselves in job events and heartbeats; empty means the host name. Set it where
    host names say nothing (containers)."""

    @model_validator(mode="after")
    def _delivery_lease_outlasts_a_backoff(self) -> WorkerSettings:
        # Otherwise the sweeper sends again a delivery that is only waiting out its backoff; each extra message is one
        # more attempt, and the attempts multiply until the delivery is dead-lettered within a minute (the fault soak
        # found it with a 60 s lease).
        if self.delivery_lease_s <= self.delivery_backoff_max_s:
            raise ValueError(
                f"delivery_lease_s ({self.delivery_lease_s:g}) must be longer than delivery_backoff_max_s "
                f"({self.delivery_backoff_max_s:g})"
            )
        return self

    def identity(self) -> str:
        """``<node>:<pid>``: which process on which host, for each analysis attempt and heartbeat."""
        return f"{self.node_name or socket.gethostname()}:{os.getpid()}"


class ModelSettings(Section):
    """Where detectors find their weights, and per-site threshold overrides."""

    weights_dir: Path | None = None
    """torchxrayvision weight files and trained checkpoints; None means ``<data_dir>/weights``. Never downloaded."""
    thresholds: dict[str, float] = Field(default_factory=dict)
    """Label → threshold, overriding the model's own (torchxrayvision: its raw operating point)."""
    thresholds_set: date | None = None
    """When ``thresholds`` were set; every SR states it with them (``cxr validate thresholds --apply`` writes it)."""
    thresholds_for: str | None = None
    """The model (``name:version:sha256``) the thresholds were calibrated for; the dashboard's Model page warns when
    the running model is another."""


class DriftSettings(Section):
    """The drift watch: each label's positive rate and mean score on each equipment model, over the last
    ``window_days``, against the validation period (the studies with the site's truth, for this model)."""

    window_days: float = Field(7.0, gt=0)
    max_rate_change: float = Field(0.10, gt=0, le=1)
    """A move of the positive rate by more than this (absolute, e.g. 0.10 = ten points) raises the flag."""
    max_score_change: float = Field(0.10, gt=0, le=1)
    """A move of the mean score by more than this raises the flag."""
    min_images: int = Field(50, ge=1)
    """Fewer images than this in the window or the validation period: no verdict. The bounds are absolute, and a
    rate over a few dozen images moves by ten points by chance alone."""
    baseline_days: float = Field(28.0, gt=0)
    """Without truth for the running model, its validation period is its first ``baseline_days``."""


class EquipmentSettings(Section):
    """Who made the result objects; written into every object's General Equipment module."""

    manufacturer: str = "CXR PACS Worker project"
    model_name: str = "CXR PACS Worker"
    device_serial_number: str = "CXR-0001"
    institution_name: str | None = None


class RulesSettings(Section):
    """Which studies the detector analyses. Non-chest studies get nothing; chest studies it must not analyse get an
    SR saying analysis was not performed and why."""

    modalities: list[str] = Field(default_factory=lambda: ["CR", "DX"])
    body_parts: list[str] = Field(default_factory=lambda: ["CHEST"])
    """Body Part Examined values that mean chest; when absent, a chest-like Study Description counts."""
    require_frontal_view: bool = True
    """Analyse only PA/AP views (images without View Position count as frontal)."""
    frontal_views: list[str] = Field(default_factory=lambda: ["PA", "AP"])
    allowed_source_aets: list[str] = Field(default_factory=list)
    """When set, only studies sent by these AE titles are analysed (others are recorded, nothing is written)."""
    minimum_patient_age_years: int | None = Field(None, ge=0)
    """Below this age (or with no age known) a chest study is not analysed, and an SR says so."""


class ResultsSettings(Section):
    """How result objects are encoded."""

    sc_compression: Literal["none", "jpeg-ls", "jpeg2000", "jpeg"] = "none"
    """Overlay SC pixel encoding: "none" (explicit VR little endian, RGB), lossless "jpeg-ls" or "jpeg2000" (RGB and
    reversible colour, about 3× and 8× smaller), or "jpeg" (baseline, about 15× smaller, marked lossy). A destination
    that does not accept the chosen syntax gets the object uncompressed (``bench/RESULTS.md``, SC encodings)."""
    not_performed_sr: bool = True
    """Send an SR saying analysis was not performed (and why) for chest studies that could not be analysed."""
    mode: Mode = "live"
    """live: results are sent. shadow: everything is analysed, encoded and recorded, and nothing is sent (a site
    measures the model against its radiologists first); each destination may override it with its own ``mode``."""


class Settings(BaseSettings):
    """Everything the node can be told. Build it once at an entry point and pass it down."""

    model_config = SettingsConfigDict(env_prefix="CXR_", env_nested_delimiter="__", extra="forbid")

    data_dir: Path = Path("var")
    """Spool, result objects and SQLite files live here."""
    database_url: str = ""
    """SQLAlchemy URL; empty means ``sqlite:///<data_dir>/cxr.sqlite``. Production: ``postgresql+psycopg://...``."""
    broker_url: str = ""
    """Celery broker; empty means ``sqla+sqlite:///<data_dir>/broker.sqlite``. Production: ``redis://host:6379/0``."""
    digest_key: SecretStr | None = None
    """Keys the accession digest kept for dashboard search; unset, a random key in ``<data_dir>/digest-key`` (0600)."""
    detector: str = "baseline"
    """``baseline`` (no weights), ``xrv:<weights>``, ``torchvision:<checkpoint>`` or ``two-stage:<a>+<b>``."""
    model: ModelSettings = Field(default_factory=ModelSettings)
    log_level: str = "INFO"
    scp: ScpSettings = Field(default_factory=ScpSettings)
    destinations: list[Destination] = Field(default_factory=list)
    """Where results go; none means results are kept in ``data_dir`` and not sent."""
    dashboard: DashboardSettings = Field(default_factory=DashboardSettings)
    worker: WorkerSettings = Field(default_factory=WorkerSettings)
    equipment: EquipmentSettings = Field(default_factory=EquipmentSettings)
    results: ResultsSettings = Field(default_factory=ResultsSettings)
    rules: RulesSettings = Field(default_factory=RulesSettings)
    retention: RetentionSettings = Field(default_factory=RetentionSettings)
    atna: AtnaSettings = Field(default_factory=AtnaSettings)
    drift: DriftSettings = Field(default_factory=DriftSettings)
    urgency: UrgencySettings = Field(default_factory=UrgencySettings)
    hl7: list[Hl7Endpoint] = Field(default_factory=list)
    """RIS endpoints: an ORU^R01 per result (``docs/conformance.md``)."""
    fhir: list[FhirEndpoint] = Field(default_factory=list)
    """EHR endpoints: a FHIR R4 transaction Bundle per result."""
    webhooks: list[WebhookEndpoint] = Field(default_factory=list)
    """Pager or chat bridges: a signed JSON POST per critical result (or per result)."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The TOML file arrives as init kwargs (see ``load``); the environment must override it.
        return (env_settings, init_settings, file_secret_settings)

    @model_validator(mode="after")
    def _fill_embedded_defaults(self) -> Settings:
        self.data_dir = self.data_dir.expanduser().resolve()
        if not self.database_url:
            self.database_url = f"sqlite:///{self.data_dir / 'cxr.sqlite'}"
        if not self.broker_url:
            self.broker_url = f"sqla+sqlite:///{self.data_dir / 'broker.sqlite'}"
        names = [
            *(d.name for d in self.destinations),
            *(e.name for e in self.hl7),
            *(e.name for e in self.fhir),
            *(w.name for w in self.webhooks),
        ]
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise ValueError(
                f"destination names must be unique across destinations, hl7, fhir and webhooks: {repeated}"
            )
        return self

    @property
    def spool_dir(self) -> Path:
        return self.data_dir / "spool"

    @property
    def early_analysis_dir(self) -> Path:
        """Early-analysis entries every analysis worker reads (``worker.shared_findings``): wherever the spool is
        shared, so are they."""
        return self.spool_dir / ".early-analysis"

    @property
    def results_dir(self) -> Path:
        return self.data_dir / "results"

    @property
    def weights_dir(self) -> Path:
        return self.model.weights_dir or self.data_dir / "weights"

    @classmethod
    def load(cls, config_path: Path | None = None) -> Settings:
        """Read ``config_path``, else ``$CXR_CONFIG``, else ``./cxr.toml`` if present; then apply the environment."""
        path = resolve_config_path(config_path)
        values: dict[str, Any] = {}
        if path is not None:
            try:
                with path.open("rb") as handle:
                    values = tomllib.load(handle)
            except tomllib.TOMLDecodeError as exc:
                raise ConfigurationError([f"{path}: not valid TOML ({exc})"]) from exc
        problems = unknown_environment(os.environ, cls)
        try:
            settings = cls(**values)
        except ValidationError as exc:
            raise ConfigurationError([*problems, *describe(exc, cls, path, values)]) from exc
        if problems:
            raise ConfigurationError(problems)
        return settings


def resolve_config_path(config_path: Path | None) -> Path | None:
    """The configuration file to read, or None for defaults and environment only."""
    if config_path is not None:
        if not config_path.is_file():
            raise FileNotFoundError(f"configuration file not found: {config_path}")
        return config_path
    from_env = os.environ.get(CONFIG_ENV_VAR)
    if from_env:
        path = Path(from_env)
        if not path.is_file():
            raise FileNotFoundError(f"{CONFIG_ENV_VAR} names a file that does not exist: {path}")
        return path
    return DEFAULT_CONFIG_FILE if DEFAULT_CONFIG_FILE.is_file() else None


def site_digest_key(settings: Settings) -> str:
    """The accession digest's key for this node (``config.privacy.digest_key``)."""
    from config.privacy import digest_key

    return digest_key(settings.data_dir, settings.digest_key.get_secret_value() if settings.digest_key else None)
