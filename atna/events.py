"""The audit messages the node emits, one builder per event (``docs/conformance.md``, "Security audit")."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from atna.messages import (
    Action,
    AuditMessage,
    Event,
    EventType,
    ObjectIdType,
    Outcome,
    Participant,
    ParticipantObject,
    Role,
)


@dataclass(frozen=True)
class StudyTransfer:
    """One study's instances moved over one association, with the patient they belong to (from the header)."""

    study_instance_uid: str
    sop_classes: Sequence[tuple[str, int]]
    patient_id: str | None
    patient_name: str | None


def application_activity(application: str, started: bool) -> AuditMessage:
    """The node (its SCP) started or stopped."""
    return AuditMessage(
        Event.APPLICATION_ACTIVITY,
        Outcome.SUCCESS,
        [Participant(application, requestor=False, roles=[Role.APPLICATION])],
        event_types=[EventType.APPLICATION_START if started else EventType.APPLICATION_STOP],
        action=Action.EXECUTE,
    )


def node_refused(our_ae: str, peer_address: str, calling_ae: str | None, reason: str) -> AuditMessage:
    """A connection or association refused (address not allowed, unknown AE, limits, an oversized PDU)."""
    return AuditMessage(
        Event.SECURITY_ALERT,
        Outcome.MINOR_FAILURE,
        [
            Participant(calling_ae or peer_address, requestor=True, address=peer_address),
            Participant(our_ae, requestor=False, roles=[Role.APPLICATION]),
        ],
        objects=[ParticipantObject(peer_address, ObjectIdType.NODE_ID, reason, type_code=2, role=13)],
        event_types=[EventType.NODE_AUTHENTICATION],
        action=Action.EXECUTE,
        outcome_description=reason,
    )


def _study_objects(study: StudyTransfer) -> list[ParticipantObject]:
    objects = [
        ParticipantObject(
            study.study_instance_uid,
            ObjectIdType.STUDY_INSTANCE_UID,
            study.study_instance_uid,
            type_code=2,
            role=3,
            sop_classes=study.sop_classes,
        )
    ]
    if study.patient_id:
        name = study.patient_name or study.patient_id
        objects.append(ParticipantObject(study.patient_id, ObjectIdType.PATIENT_NUMBER, name, type_code=1, role=1))
    return objects


def instances_transferred(
    source: tuple[str, str | None], destination: tuple[str, str | None], study: StudyTransfer, received: bool
) -> AuditMessage:
    """DICOM Instances Transferred: (AE title, address) of the source and of the destination. The node reports as
    the receiver (action Create) of a study a peer stored, and as the sender (Read) of its results."""
    source_ae, source_address = source
    destination_ae, destination_address = destination
    return AuditMessage(
        Event.INSTANCES_TRANSFERRED,
        Outcome.SUCCESS,
        [
            # The source opened the association, whichever side the node is on.
            Participant(source_ae, requestor=True, roles=[Role.SOURCE], address=source_address),
            Participant(destination_ae, requestor=False, roles=[Role.DESTINATION], address=destination_address),
        ],
        objects=_study_objects(study),
        action=Action.CREATE if received else Action.READ,
    )


def user_authentication(
    user: str, address: str | None, application: str, login: bool, outcome: Outcome, why: str | None = None
) -> AuditMessage:
    """A dashboard login (succeeded, failed or throttled) or logout."""
    return AuditMessage(
        Event.USER_AUTHENTICATION,
        outcome,
        [
            Participant(user, requestor=True, address=address),
            Participant(application, requestor=False, roles=[Role.APPLICATION]),
        ],
        event_types=[EventType.LOGIN if login else EventType.LOGOUT],
        action=Action.EXECUTE,
        outcome_description=why,
    )


def patient_record_read(
    user: str, address: str | None, application: str, patient_id: str, patient_name: str | None
) -> AuditMessage:
    """A dashboard user revealed a study's patient identity (the node's only read of patient data by a person)."""
    patient = ParticipantObject(patient_id, ObjectIdType.PATIENT_NUMBER, patient_name or patient_id, 1, 1)
    return AuditMessage(
        Event.PATIENT_RECORD,
        Outcome.SUCCESS,
        [
            Participant(user, requestor=True, address=address),
            Participant(application, requestor=False, roles=[Role.APPLICATION]),
        ],
        objects=[patient],
        action=Action.READ,
    )
