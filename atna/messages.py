"""DICOM audit messages (PS3.15 A.5): what happened, who took part, what it concerned, as the schema's XML.

Each builder below makes one of the messages the node emits (``docs/conformance.md`` lists when). The XML follows the
element order of the A.5.1 schema (``docs/schemas/dicom-audit-message.rng``, which the suite validates against).
Patient identifiers appear here, and only here: the collector is the site's audit repository, the one place meant
to hold who touched which patient's data. They are read from the spooled header when the message is made, and never
logged or stored by the node.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import IntEnum, StrEnum
from typing import Protocol
from xml.etree import ElementTree


@dataclass(frozen=True)
class Code:
    code: str
    system: str
    meaning: str


class Event:
    """EventID codes (DCM, PS3.16 CID 400)."""

    APPLICATION_ACTIVITY = Code("110100", "DCM", "Application Activity")
    INSTANCES_TRANSFERRED = Code("110104", "DCM", "DICOM Instances Transferred")
    PATIENT_RECORD = Code("110110", "DCM", "Patient Record")
    SECURITY_ALERT = Code("110113", "DCM", "Security Alert")
    USER_AUTHENTICATION = Code("110114", "DCM", "User Authentication")


class EventType:
    """EventTypeCode codes (DCM, CID 401, 403, 406)."""

    APPLICATION_START = Code("110120", "DCM", "Application Start")
    APPLICATION_STOP = Code("110121", "DCM", "Application Stop")
    LOGIN = Code("110122", "DCM", "Login")
    LOGOUT = Code("110123", "DCM", "Logout")
    NODE_AUTHENTICATION = Code("110126", "DCM", "Node Authentication")


class Role:
    """RoleIDCode codes (DCM, CID 402)."""

    APPLICATION = Code("110150", "DCM", "Application")
    DESTINATION = Code("110152", "DCM", "Destination Role ID")
    SOURCE = Code("110153", "DCM", "Source Role ID")


class ObjectIdType:
    """ParticipantObjectIDTypeCode codes (RFC 3881 and DCM, CID 404)."""

    PATIENT_NUMBER = Code("2", "RFC-3881", "Patient Number")
    STUDY_INSTANCE_UID = Code("110180", "DCM", "Study Instance UID")
    NODE_ID = Code("110182", "DCM", "Node ID")


class Action(StrEnum):
    CREATE = "C"
    READ = "R"
    EXECUTE = "E"


class Outcome(IntEnum):
    SUCCESS = 0
    MINOR_FAILURE = 4
    SERIOUS_FAILURE = 8


@dataclass(frozen=True)
class Participant:
    """An ActiveParticipant: a person, an application or a peer node."""

    user_id: str
    requestor: bool
    roles: Sequence[Code] = ()
    address: str | None = None
    """NetworkAccessPointID, an IP address (type 2)."""
    user_name: str | None = None


@dataclass(frozen=True)
class ParticipantObject:
    """A ParticipantObjectIdentification: a study, a patient, or a node a security alert concerns."""

    object_id: str
    id_type: Code
    name: str
    type_code: int
    """1 person, 2 system object."""
    role: int
    """1 patient, 3 report (a study), 13 security resource."""
    sop_classes: Sequence[tuple[str, int]] = ()
    """(SOP Class UID, number of instances) of a study's instances."""


@dataclass(frozen=True)
class AuditMessage:
    event: Code
    outcome: Outcome
    participants: Sequence[Participant]
    objects: Sequence[ParticipantObject] = ()
    event_types: Sequence[Code] = ()
    action: Action | None = None
    outcome_description: str | None = None
    at: datetime = field(default_factory=lambda: datetime.now(UTC))


@dataclass(frozen=True)
class AuditSource:
    """Who reports: AuditSourceID (our AE title by default) and the site."""

    source_id: str
    enterprise_site_id: str | None = None


def _coded(parent: ElementTree.Element, tag: str, code: Code) -> None:
    ElementTree.SubElement(
        parent, tag, {"csd-code": code.code, "codeSystemName": code.system, "originalText": code.meaning}
    )


def _participant(root: ElementTree.Element, p: Participant) -> None:
    attributes = {"UserID": p.user_id, "UserIsRequestor": "true" if p.requestor else "false"}
    if p.user_name:
        attributes["UserName"] = p.user_name
    if p.address:
        attributes |= {"NetworkAccessPointID": p.address, "NetworkAccessPointTypeCode": "2"}
    element = ElementTree.SubElement(root, "ActiveParticipant", attributes)
    for role in p.roles:
        _coded(element, "RoleIDCode", role)


def _object(root: ElementTree.Element, o: ParticipantObject) -> None:
    element = ElementTree.SubElement(
        root,
        "ParticipantObjectIdentification",
        {
            "ParticipantObjectID": o.object_id,
            "ParticipantObjectTypeCode": str(o.type_code),
            "ParticipantObjectTypeCodeRole": str(o.role),
        },
    )
    _coded(element, "ParticipantObjectIDTypeCode", o.id_type)
    ElementTree.SubElement(element, "ParticipantObjectName").text = o.name
    if o.sop_classes:
        description = ElementTree.SubElement(element, "ParticipantObjectDescription")
        for uid, count in o.sop_classes:
            ElementTree.SubElement(description, "SOPClass", {"UID": uid, "NumberOfInstances": str(count)})


def to_xml(message: AuditMessage, source: AuditSource) -> bytes:
    """The message as UTF-8 XML on one line (syslog carries it as the MSG part)."""
    root = ElementTree.Element("AuditMessage")
    attributes = {
        "EventDateTime": message.at.astimezone(UTC).isoformat(timespec="milliseconds"),
        "EventOutcomeIndicator": str(int(message.outcome)),
    }
    if message.action is not None:
        attributes["EventActionCode"] = message.action.value
    event = ElementTree.SubElement(root, "EventIdentification", attributes)
    _coded(event, "EventID", message.event)
    for event_type in message.event_types:
        _coded(event, "EventTypeCode", event_type)
    if message.outcome_description:
        ElementTree.SubElement(event, "EventOutcomeDescription").text = message.outcome_description
    for participant in message.participants:
        _participant(root, participant)
    source_attributes = {"AuditSourceID": source.source_id}
    if source.enterprise_site_id:
        source_attributes["AuditEnterpriseSiteID"] = source.enterprise_site_id
    audit_source = ElementTree.SubElement(root, "AuditSourceIdentification", source_attributes)
    ElementTree.SubElement(audit_source, "AuditSourceTypeCode", {"csd-code": "4"})  # application server process
    for obj in message.objects:
        _object(root, obj)
    xml: bytes = ElementTree.tostring(root, encoding="utf-8", xml_declaration=False)
    return xml


class AuditSink(Protocol):
    """Takes audit messages without blocking (``atna.syslog.SyslogSender``)."""

    def emit(self, message: AuditMessage) -> None: ...
