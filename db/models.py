"""ORM models: the system of record for every study, job, event, finding, result object and delivery.

No patient-identifying attribute (name, ID, birth date, accession number) is stored here. The header facts kept on
Instance and Study are those the eligibility rules and the dashboard need.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from db.columns import UTCDateTime, enum_column, utcnow
from db.enums import (
    AuditKind,
    Channel,
    DeliveryState,
    JobState,
    MessagePurpose,
    RejectionReason,
    ResultKind,
    TruthValue,
    Urgency,
)

# The enums live in db.enums; they are re-exported here, where the models that use them are.
__all__ = [
    "AuditEvent",
    "AuditKind",
    "Base",
    "Channel",
    "Delivery",
    "DeliveryAttempt",
    "DeliveryState",
    "DestinationState",
    "Finding",
    "Instance",
    "Job",
    "JobEvent",
    "JobState",
    "LabelScore",
    "MessagePurpose",
    "RejectionReason",
    "ResultKind",
    "ResultObject",
    "SplittingSender",
    "Study",
    "TruthLabel",
    "TruthValue",
    "UTCDateTime",
    "Urgency",
    "WorkerHeartbeat",
    "utcnow",
]


class Base(DeclarativeBase):
    pass


class Study(Base):
    __tablename__ = "study"

    id: Mapped[int] = mapped_column(primary_key=True)
    study_instance_uid: Mapped[str] = mapped_column(String(64), unique=True)
    study_description: Mapped[str | None] = mapped_column(String(64))
    first_received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    completion_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    """When set, the study becomes one job at this time (release + debounce, or the stability fallback)."""
    stat: Mapped[bool] = mapped_column(default=False, server_default="0")
    """Urgent: an instance came with DIMSE priority HIGH or from a STAT calling AE; its job takes the STAT lane."""
    accession_digest: Mapped[str | None] = mapped_column(String(32), index=True)
    """``config.privacy.accession_digest`` of the Accession Number (keyed), for search; the number is never stored."""

    instances: Mapped[list[Instance]] = relationship(back_populates="study", order_by="Instance.id")
    jobs: Mapped[list[Job]] = relationship(back_populates="study", order_by="Job.id")


class Instance(Base):
    __tablename__ = "instance"

    id: Mapped[int] = mapped_column(primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("study.id"), index=True)
    sop_instance_uid: Mapped[str] = mapped_column(String(64), unique=True)
    sop_class_uid: Mapped[str] = mapped_column(String(64))
    series_instance_uid: Mapped[str] = mapped_column(String(64))
    transfer_syntax_uid: Mapped[str] = mapped_column(String(64))
    modality: Mapped[str | None] = mapped_column(String(16))
    body_part_examined: Mapped[str | None] = mapped_column(String(16))
    view_position: Mapped[str | None] = mapped_column(String(16))
    patient_age_years: Mapped[int | None] = mapped_column(Integer)
    """Derived from Patient's Age, or birth date and study date; the birth date itself is never stored."""
    calling_ae_title: Mapped[str | None] = mapped_column(String(16))
    manufacturer: Mapped[str | None] = mapped_column(String(64))
    """The modality's Manufacturer and Manufacturer's Model Name: equipment, not patient, facts, for the agreement
    report's breakdowns and the drift watch."""
    manufacturer_model_name: Mapped[str | None] = mapped_column(String(64))
    spool_path: Mapped[str] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    purged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    """When retention removed the spooled file; the row (and everything recorded about it) stays."""
    rejected_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    """When an IOCM rejection note from the PACS withdrew this instance: it is never analysed again."""
    rejection_code: Mapped[str | None] = mapped_column(String(16))
    """The note's title code (DCM 113001, 113037, 113038 or 113039)."""
    revision: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    """1, then one more each time the instance is re-sent with other content (a corrected image or header): the row
    then names the newest file, and results derive their UIDs from the revision too."""

    study: Mapped[Study] = relationship(back_populates="instances")


class Job(Base):
    __tablename__ = "job"

    id: Mapped[int] = mapped_column(primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("study.id"), index=True)
    state: Mapped[JobState] = mapped_column(enum_column(JobState, "job_state"), index=True)
    reason: Mapped[str | None] = mapped_column(Text)
    """Why the job is NOT_ELIGIBLE, FAILED or DEAD_LETTER."""
    detector: Mapped[str] = mapped_column(String(128))
    detector_version: Mapped[str | None] = mapped_column(String(64))
    """The model version that made the results (set when analysis ends with an SR)."""
    weights_sha256: Mapped[str | None] = mapped_column(String(64))
    """The sha256 of the weights that made them; none for the baseline."""
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    """While QUEUED or ANALYZING: when the sweeper may presume the message or its worker lost and send it again."""
    analysis_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    analysis_seconds: Mapped[float | None] = mapped_column(Float)
    """Wall time of the last analysis attempt (decode, detect, encode, write)."""
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    """When the job last reached a terminal state."""
    end_to_end_seconds: Mapped[float | None] = mapped_column(Float)
    """From the study's last received instance to that terminal state (results delivered, for a delivered job)."""
    urgency: Mapped[Urgency | None] = mapped_column(enum_column(Urgency, "urgency"), index=True)
    """Set when analysis ends with an SR: critical, abnormal, no_finding or not_performed."""
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    """When an operator acknowledged this critical result on the dashboard."""
    acknowledged_by: Mapped[str | None] = mapped_column(String(64))
    """The dashboard user who acknowledged it."""
    shadow: Mapped[bool] = mapped_column(default=False, server_default="0")
    """Results made in shadow mode: recorded, and withheld from the destinations in shadow."""
    released_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    """When an operator released this shadow result to its destinations."""
    released_by: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    study: Mapped[Study] = relationship(back_populates="jobs")
    events: Mapped[list[JobEvent]] = relationship(back_populates="job", order_by="JobEvent.id")
    findings: Mapped[list[Finding]] = relationship(back_populates="job", order_by="Finding.id")
    results: Mapped[list[ResultObject]] = relationship(back_populates="job", order_by="ResultObject.id")


class JobEvent(Base):
    __tablename__ = "job_event"

    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("job.id"), index=True)
    state: Mapped[JobState] = mapped_column(enum_column(JobState, "job_state"))
    detail: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    job: Mapped[Job] = relationship(back_populates="events")


class Finding(Base):
    __tablename__ = "finding"

    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("job.id"), index=True)
    instance_id: Mapped[int] = mapped_column(ForeignKey("instance.id"))
    label: Mapped[str] = mapped_column(String(64))
    code_scheme: Mapped[str] = mapped_column(String(16))
    code_value: Mapped[str] = mapped_column(String(32))
    code_meaning: Mapped[str] = mapped_column(String(64))
    probability: Mapped[float] = mapped_column(Float)
    x_min: Mapped[float | None] = mapped_column(Float)
    y_min: Mapped[float | None] = mapped_column(Float)
    x_max: Mapped[float | None] = mapped_column(Float)
    y_max: Mapped[float | None] = mapped_column(Float)

    job: Mapped[Job] = relationship(back_populates="findings")


class LabelScore(Base):
    """Every label's score on every analysed image, reported or not: the agreement report, threshold calibration and
    the drift watch need the scores below the operating threshold too."""

    __tablename__ = "label_score"

    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("job.id"), index=True)
    instance_id: Mapped[int] = mapped_column(ForeignKey("instance.id"))
    label: Mapped[str] = mapped_column(String(64))
    score: Mapped[float] = mapped_column(Float)
    positive: Mapped[bool] = mapped_column(default=False)
    """Reported as a finding (the score reached the label's operating threshold)."""


class TruthLabel(Base):
    """The site's radiologists' reading of one label on one study, imported by ``cxr validate import``. Keyed by Study
    Instance UID, not by our study row, so truth for a study not yet received is kept and counts once it arrives."""

    __tablename__ = "truth_label"
    __table_args__ = (UniqueConstraint("study_instance_uid", "label", "reader", name="uq_truth_study_label_reader"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    study_instance_uid: Mapped[str] = mapped_column(String(64), index=True)
    label: Mapped[str] = mapped_column(String(64))
    value: Mapped[TruthValue] = mapped_column(enum_column(TruthValue, "truth_value"))
    reader: Mapped[str] = mapped_column(String(64), default="", server_default="")
    """The reader's id as the site gives it (a pseudonym, never a name is expected); empty when not given."""
    imported_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ResultObject(Base):
    """One DICOM object we produced. Its SOP Instance UID is deterministic, so a re-run updates the same row."""

    __tablename__ = "result_object"

    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("job.id"), index=True)
    kind: Mapped[ResultKind] = mapped_column(enum_column(ResultKind, "result_kind"))
    sop_class_uid: Mapped[str] = mapped_column(String(64))
    sop_instance_uid: Mapped[str] = mapped_column(String(64), unique=True)
    series_instance_uid: Mapped[str] = mapped_column(String(64))
    series_number: Mapped[int | None] = mapped_column(Integer)
    instance_number: Mapped[int | None] = mapped_column(Integer)
    path: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    superseded_by_id: Mapped[int | None] = mapped_column(ForeignKey("result_object.id"))
    """For an SR: the later SR of the same study that replaced it (its Predecessor Documents Sequence names this)."""
    superseded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    purged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    """When retention removed the file (``retention.results_days``); it can then not be sent again."""

    job: Mapped[Job] = relationship(back_populates="results")
    superseded_by: Mapped[ResultObject | None] = relationship(remote_side="ResultObject.id")
    deliveries: Mapped[list[Delivery]] = relationship(back_populates="result_object", order_by="Delivery.id")


class Delivery(Base):
    """One output to one destination. A DICOM delivery sends its result object; an HL7, FHIR or webhook delivery is a
    message about the study's SR (its result object), so a re-run that yields the same SR sends no second message."""

    __tablename__ = "delivery"
    __table_args__ = (
        UniqueConstraint("result_object_id", "destination_name", "purpose", name="uq_delivery_object_destination"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    result_object_id: Mapped[int] = mapped_column(ForeignKey("result_object.id"), index=True)
    destination_name: Mapped[str] = mapped_column(String(64))
    channel: Mapped[Channel] = mapped_column(enum_column(Channel, "channel"), default=Channel.DICOM)
    purpose: Mapped[MessagePurpose] = mapped_column(
        enum_column(MessagePurpose, "message_purpose"), default=MessagePurpose.RESULT
    )
    state: Mapped[DeliveryState] = mapped_column(enum_column(DeliveryState, "delivery_state"), index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    commitment_transaction_uid: Mapped[str | None] = mapped_column(String(64), index=True)
    """Transaction UID of the storage commitment request awaiting its report."""
    auto_resent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    """When the sweeper re-sent this dead-lettered delivery because its destination answered C-ECHO again (once at
    most: after that, an operator decides)."""
    retry_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    """After a failed attempt: when the retry is due. A message that arrives sooner is a duplicate (the sweeper sent
    it again while the first waited in a long queue) and is dropped, so duplicates cannot use up the retries."""
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    result_object: Mapped[ResultObject] = relationship(back_populates="deliveries")
    attempt_log: Mapped[list[DeliveryAttempt]] = relationship(back_populates="delivery", order_by="DeliveryAttempt.id")


class DeliveryAttempt(Base):
    """One C-STORE of a result object (or one commitment report about it), with its outcome: the dashboard's history."""

    __tablename__ = "delivery_attempt"

    id: Mapped[int] = mapped_column(primary_key=True)
    delivery_id: Mapped[int] = mapped_column(ForeignKey("delivery.id"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    outcome: Mapped[DeliveryState] = mapped_column(enum_column(DeliveryState, "delivery_state"))
    """SENT, COMMIT_PENDING (stored, commitment awaited), PENDING (failed, will retry) or DEAD_LETTER."""
    error: Mapped[str | None] = mapped_column(Text)

    delivery: Mapped[Delivery] = relationship(back_populates="attempt_log")


class AuditEvent(Base):
    """Security-relevant events: peers refused, operators' actions and PHI reveals. Never patient data itself."""

    __tablename__ = "audit_event"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[AuditKind] = mapped_column(enum_column(AuditKind, "audit_kind"), index=True)
    actor: Mapped[str | None] = mapped_column(String(64))
    """The dashboard user who acted; None for DICOM peers."""
    calling_ae_title: Mapped[str | None] = mapped_column(String(16))
    peer_address: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


class DestinationState(Base):
    """Operator-controlled state of a configured destination (the destinations themselves live in settings)."""

    __tablename__ = "destination_state"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    paused: Mapped[bool] = mapped_column(default=False)
    """While paused, nothing is sent to it; its deliveries wait, uncounted, and are sent on resume."""
    changed_by: Mapped[str | None] = mapped_column(String(64))
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class SplittingSender(Base):
    """A calling AE title seen to split a study across associations (``dicom_node.senders``): kept here, so that
    every SCP process of the node, and each after a restart, makes its studies wait the debounce without learning it
    again from one more split study (and one more result for the follow-up to supersede)."""

    __tablename__ = "splitting_sender"

    calling_ae_title: Mapped[str] = mapped_column(String(16), primary_key=True)
    learned_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class WorkerHeartbeat(Base):
    """One row per running worker process, refreshed periodically; the dashboard lists those seen recently."""

    __tablename__ = "worker_heartbeat"

    hostname: Mapped[str] = mapped_column(String(128), primary_key=True)
    queues: Mapped[str] = mapped_column(String(64))
    device: Mapped[str] = mapped_column(String(32))
    detector: Mapped[str] = mapped_column(String(128))
    detector_version: Mapped[str] = mapped_column(String(64))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
