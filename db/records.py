"""Typed records that cross the repository boundary, so callers never hold ORM objects or untyped dicts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from db.models import DeliveryState, JobState, ResultKind


@dataclass(frozen=True)
class InstanceFacts:
    """What the SCP learns from one received instance's header. No patient-identifying attributes."""

    study_instance_uid: str
    series_instance_uid: str
    sop_instance_uid: str
    sop_class_uid: str
    transfer_syntax_uid: str
    modality: str | None
    body_part_examined: str | None
    view_position: str | None
    study_description: str | None
    calling_ae_title: str | None
    spool_path: Path
    patient_age_years: int | None = None
    stat: bool = False


@dataclass(frozen=True)
class RecordOutcome:
    study_id: int
    created: bool
    """False when the SOP instance was already recorded (a duplicate send)."""


@dataclass(frozen=True)
class StudyFacts:
    """What the eligibility rules look at."""

    study_id: int
    study_description: str | None
    instances: tuple[InstanceSummary, ...]


@dataclass(frozen=True)
class InstanceSummary:
    instance_id: int
    sop_instance_uid: str
    sop_class_uid: str
    modality: str | None
    body_part_examined: str | None
    view_position: str | None
    calling_ae_title: str | None
    spool_path: Path
    patient_age_years: int | None = None


@dataclass(frozen=True)
class JobWork:
    """Everything the analysis stage needs to run a job."""

    job_id: int
    state: JobState
    detector: str
    study_instance_uid: str
    instances: tuple[InstanceSummary, ...]
    attempt: int = 1
    """Which attempt this is; a retry runs alone (``worker.batching``)."""


@dataclass(frozen=True)
class FindingRecord:
    instance_id: int
    label: str
    code_scheme: str
    code_value: str
    code_meaning: str
    probability: float
    box: tuple[float, float, float, float] | None


@dataclass(frozen=True)
class ResultRecord:
    kind: ResultKind
    sop_class_uid: str
    sop_instance_uid: str
    series_instance_uid: str
    path: Path


@dataclass(frozen=True)
class DeliveryWork:
    delivery_id: int
    job_id: int
    destination_name: str
    state: DeliveryState
    attempts: int
    path: Path
    sop_instance_uid: str


@dataclass(frozen=True)
class QueueOverview:
    """What ``cxr status`` (and later the dashboard) shows first."""

    jobs_by_state: dict[JobState, int]
    pending_deliveries: int
    oldest_waiting_job: int | None
    oldest_waiting_since: datetime | None


@dataclass(frozen=True)
class JobSummary:
    job_id: int
    study_id: int
    state: JobState
    reason: str | None
    detector: str
    attempts: int
    lease_expires_at: datetime | None = None


@dataclass(frozen=True)
class AuditRecord:
    at: datetime
    kind: str
    actor: str | None
    calling_ae_title: str | None
    peer_address: str | None
    detail: str | None
