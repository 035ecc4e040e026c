"""atna.messages and atna.events: every message the node emits validates against the DICOM audit schema
(PS3.15 A.5.1, docs/schemas), and the validator does reject a message that breaks it."""

from __future__ import annotations

import pytest
from lxml import etree

from atna import events
from atna.messages import AuditMessage, AuditSource, Outcome, to_xml
from atna.syslog import BOM, MSGID, syslog_frame
from tests.helpers.rsyslog import audit_schema

SOURCE = AuditSource("CXR_AI", "Site 1")
STUDY = events.StudyTransfer("1.2.3.4", [("1.2.840.10008.5.1.4.1.1.1", 2)], "PID-1", "Doe^Jane")

EVERY_MESSAGE = {
    "application start": events.application_activity("CXR_AI", started=True),
    "application stop": events.application_activity("CXR_AI", started=False),
    "node refused": events.node_refused("CXR_AI", "10.0.0.9", "MODALITY", "too many associations"),
    "instances received": events.instances_transferred(("MODALITY", "10.0.0.9"), ("CXR_AI", None), STUDY, True),
    "instances sent": events.instances_transferred(("CXR_AI", None), ("PACS", "10.0.0.2"), STUDY, False),
    "login": events.user_authentication("ann", "10.0.0.7", "CXR_AI dashboard", True, Outcome.SUCCESS),
    "login failed": events.user_authentication("ann", None, "CXR_AI dashboard", True, Outcome.MINOR_FAILURE, "no"),
    "logout": events.user_authentication("ann", "10.0.0.7", "CXR_AI dashboard", False, Outcome.SUCCESS),
    "identity revealed": events.patient_record_read("otto", "10.0.0.7", "CXR_AI dashboard", "PID-1", None),
}


@pytest.mark.parametrize("message", EVERY_MESSAGE.values(), ids=EVERY_MESSAGE.keys())
def test_every_message_validates_against_the_schema(message: AuditMessage) -> None:
    schema = audit_schema()
    document = etree.fromstring(to_xml(message, SOURCE))
    assert schema.validate(document), schema.error_log.last_error
    assert document.find("EventIdentification/EventID").get("csd-code") == message.event.code


def test_the_schema_rejects_a_broken_message() -> None:
    schema = audit_schema()
    document = etree.fromstring(to_xml(EVERY_MESSAGE["login"], SOURCE))
    del document.find("EventIdentification/EventID").attrib["originalText"]
    assert not schema.validate(document)
    document = etree.fromstring(to_xml(EVERY_MESSAGE["login"], SOURCE))
    document.remove(document.find("AuditSourceIdentification"))
    assert not schema.validate(document)


def test_a_study_transfer_names_the_study_its_sop_classes_and_the_patient() -> None:
    document = etree.fromstring(to_xml(EVERY_MESSAGE["instances received"], SOURCE))
    study, patient = document.findall("ParticipantObjectIdentification")
    assert (study.get("ParticipantObjectID"), study.get("ParticipantObjectTypeCodeRole")) == ("1.2.3.4", "3")
    assert study.find("ParticipantObjectDescription/SOPClass").attrib == {
        "UID": "1.2.840.10008.5.1.4.1.1.1",
        "NumberOfInstances": "2",
    }
    assert (patient.get("ParticipantObjectID"), patient.findtext("ParticipantObjectName")) == ("PID-1", "Doe^Jane")
    source, destination = document.findall("ActiveParticipant")
    assert (source.get("UserID"), source.get("UserIsRequestor")) == ("MODALITY", "true")
    assert destination.find("RoleIDCode").get("csd-code") == "110152"
    assert document.find("EventIdentification").get("EventActionCode") == "C"


def test_the_syslog_frame_is_rfc_5424_with_the_ihe_msgid() -> None:
    frame = syslog_frame(b"<AuditMessage/>", "cxr-scp", hostname="node1")
    header, _, message = frame.partition(b" - ")
    pri_version, _stamp, host, app, _pid, msgid = header.decode().split(" ")
    assert (pri_version, host, app, msgid) == ("<85>1", "node1", "cxr-scp", MSGID), "authpriv.notice, version 1"
    assert message == BOM + b"<AuditMessage/>"
