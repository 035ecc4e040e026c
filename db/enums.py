"""The enums of the system of record: lifecycles, kinds and codes shared by the ORM models and the repositories."""

from __future__ import annotations

import enum


class JobState(enum.StrEnum):
    """A job's lifecycle; ``db.lifecycle`` holds the legal moves, and every move is also written as a JobEvent."""

    QUEUED = "QUEUED"
    ANALYZING = "ANALYZING"
    ENCODED = "ENCODED"
    DELIVERED = "DELIVERED"
    COMPLETED = "COMPLETED"  # results kept, no destination configured
    NOT_ELIGIBLE = "NOT_ELIGIBLE"
    FAILED = "FAILED"
    DEAD_LETTER = "DEAD_LETTER"
    CANCELLED = "CANCELLED"  # an operator cancelled it before analysis
    RETRACTED = "RETRACTED"  # its results were withdrawn: a rejection KOS (and corrections) went where they had gone


class DeliveryState(enum.StrEnum):
    PENDING = "PENDING"
    COMMIT_PENDING = "COMMIT_PENDING"  # stored; waiting for the destination's storage commitment report
    SENT = "SENT"
    DEAD_LETTER = "DEAD_LETTER"


class Channel(enum.StrEnum):
    """How a delivery travels: C-STORE of a result object, or a message about the study's SR."""

    DICOM = "DICOM"
    HL7 = "HL7"
    FHIR = "FHIR"
    WEBHOOK = "WEBHOOK"


class MessagePurpose(enum.StrEnum):
    RESULT = "RESULT"
    REMINDER = "REMINDER"  # a critical result still unacknowledged after ``urgency.acknowledge_within_s``
    RETRACTION = "RETRACTION"  # the result was withdrawn: HL7 deletes its observations, FHIR marks it entered-in-error


class Urgency(enum.StrEnum):
    """Mirrors ``models.urgency.Urgency`` (``db`` may not import ``models``); a test keeps the two equal."""

    CRITICAL = "critical"
    ABNORMAL = "abnormal"
    NO_FINDING = "no_finding"
    NOT_PERFORMED = "not_performed"


class RejectionReason(enum.Enum):
    """(code value, meaning) of the IOCM rejection titles, DICOM CID 7011 (scheme DCM): what a PACS's rejection note
    says (``dicom_node.rejection``), and what our own says (``worker.encode.kos``)."""

    QUALITY = ("113001", "Rejected for Quality Reasons")
    PATIENT_SAFETY = ("113037", "Rejected for Patient Safety Reasons")
    INCORRECT_WORKLIST_ENTRY = ("113038", "Incorrect Modality Worklist Entry")
    RETENTION_EXPIRED = ("113039", "Data Retention Policy Expired")

    @property
    def code(self) -> str:
        return self.value[0]

    @property
    def meaning(self) -> str:
        return self.value[1]

    @classmethod
    def from_code(cls, value: str) -> RejectionReason | None:
        return next((r for r in cls if r.code == value), None)

    @property
    def for_our_results(self) -> RejectionReason:
        """What our own note says when a source was rejected: patient safety when the images belonged to someone
        else (113037, 113038), quality otherwise."""
        if self in (RejectionReason.PATIENT_SAFETY, RejectionReason.INCORRECT_WORKLIST_ENTRY):
            return RejectionReason.PATIENT_SAFETY
        return RejectionReason.QUALITY


class ResultKind(enum.StrEnum):
    SR = "SR"
    SC = "SC"
    GSPS = "GSPS"
    SEG = "SEG"  # a segmentation per analysed image with a boxed finding, where a destination asks for one
    KOS = "KOS"  # our IOCM rejection note, withdrawing the job's other objects


class AuditKind(enum.StrEnum):
    ASSOCIATION_ACCEPTED = "ASSOCIATION_ACCEPTED"
    ASSOCIATION_REJECTED = "ASSOCIATION_REJECTED"
    CONNECTION_REFUSED = "CONNECTION_REFUSED"
    LOGIN_FAILED = "LOGIN_FAILED"
    LOGIN_SUCCEEDED = "LOGIN_SUCCEEDED"
    LOGIN_THROTTLED = "LOGIN_THROTTLED"  # refused unchecked: too many recent failures for the name or the address
    LOGOUT = "LOGOUT"
    OPERATOR_ACTION = "OPERATOR_ACTION"
    PHI_REVEALED = "PHI_REVEALED"


class TruthValue(enum.StrEnum):
    """A radiologist's reading of one label on one study (``cxr validate import``)."""

    POSITIVE = "positive"
    NEGATIVE = "negative"
    UNCERTAIN = "uncertain"


class ResultMode(enum.StrEnum):
    """Which results a report covers: those made in shadow mode, those made live, or both."""

    SHADOW = "shadow"
    LIVE = "live"
    ALL = "all"
