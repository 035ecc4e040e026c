"""atna.syslog, dicom_node.audit_events, worker.audit and the dashboard's login auditing through ``cxr serve`` to a
real Debian rsyslogd: the node's start and stop, a study stored, its three result objects sent to a DCMTK
destination, a refused association, an oversized PDU, a login, a failed login and a logout arrive as RFC 5424
messages (authpriv.notice, MSGID IHE+RFC-3881), each valid against the DICOM audit schema. The patient's identifiers
go to the collector, and nowhere into the node's own log."""

from __future__ import annotations

import socket
import struct
from collections import Counter
from pathlib import Path

import pydicom

from atna.syslog import MSGID
from tests.helpers.dashboard import VIEWER, logged_in, page_csrf, users_toml
from tests.helpers.node import cxr_serve, wait_for_files
from tests.helpers.peers import storescp, storescu, wait_for_port
from tests.helpers.rsyslog import audit_schema, rsyslog

AUTHPRIV_NOTICE = 10 * 8 + 5


def test_the_node_s_audit_messages_reach_rsyslog_and_validate(tmp_path: Path, rg1: Path) -> None:
    patient_id = str(pydicom.dcmread(rg1, stop_before_pixels=True).PatientID)
    with rsyslog(tmp_path / "rsyslog") as collector, storescp(tmp_path / "pacs") as pacs:
        atna = (
            f'[atna]\nhost = "127.0.0.1"\nport = {collector.port}\ntransport = "tcp"\nenterprise_site_id = "Site 1"\n'
        )
        with cxr_serve(tmp_path / "node", pacs, extra_toml=atna, dashboard_toml=users_toml(VIEWER)) as node:
            assert storescu(rg1, node.port).returncode == 0
            wait_for_files(tmp_path / "pacs", 3, timeout_s=60)
            assert storescu(rg1, node.port, "NOT_US").returncode != 0, "wrong called AE: rejected"
            with socket.create_connection(("127.0.0.1", node.port)) as connection:
                connection.sendall(struct.pack(">BBL", 0x04, 0, 64 * 1024 * 1024))
                connection.recv(64)
            wait_for_port(node.dashboard_port)
            base_url = f"http://127.0.0.1:{node.dashboard_port}"
            client = logged_in(base_url, VIEWER)
            try:
                client.post("/logout", data={"csrf_token": page_csrf(client)})
                token = page_csrf(client, "/login")
                wrong = {"username": VIEWER.name, "password": "wrong", "csrf_token": token}
                assert client.post("/login", data=wrong).status_code == 401
            finally:
                client.close()
            collector.wait_for(10)
        messages = collector.wait_for(11)
        log = node.log.read_text(errors="replace")

    schema = audit_schema()
    for message in messages:
        assert schema.validate(message.xml), schema.error_log.last_error
        assert (message.pri, message.msgid) == (AUTHPRIV_NOTICE, MSGID)
        assert message.xml.find("AuditSourceIdentification").attrib == {
            "AuditSourceID": "CXR_AI",
            "AuditEnterpriseSiteID": "Site 1",
        }
    events = Counter(
        (m.app_name, m.xml.find("EventIdentification/EventID").get("originalText"), _event_type(m)) for m in messages
    )
    assert events == {
        ("cxr-scp", "Application Activity", "Application Start"): 1,
        ("cxr-scp", "DICOM Instances Transferred", None): 1,
        ("cxr-worker", "DICOM Instances Transferred", None): 3,
        ("cxr-scp", "Security Alert", "Node Authentication"): 2,
        ("cxr-dashboard", "User Authentication", "Login"): 2,
        ("cxr-dashboard", "User Authentication", "Logout"): 1,
        ("cxr-scp", "Application Activity", "Application Stop"): 1,
    }
    sent = [m.xml for m in messages if m.app_name == "cxr-worker"]
    assert {m.find("EventIdentification").get("EventActionCode") for m in sent} == {"R"}, "the node as the source"
    assert {m.find("ActiveParticipant[2]").get("UserID") for m in sent} == {"PACS"}, "the destination"
    patients = [_patient_id(m.xml) for m in messages]
    transfers = [m for m in messages if m.xml.find("EventIdentification/EventID").get("csd-code") == "110104"]
    assert [_patient_id(m.xml) for m in transfers] == [patient_id] * 4, "the collector learns whose study moved"
    assert patients.count(patient_id) == 4, "and only transfers name a patient"
    outcomes = sorted(m.xml.find("EventIdentification").get("EventOutcomeIndicator") for m in messages)
    assert outcomes.count("4") == 3, "two refusals and a failed login are minor failures"
    assert patient_id not in log, "the node's own log names no patient"


def _patient_id(xml: object) -> str | None:
    patient = xml.find("ParticipantObjectIdentification[@ParticipantObjectTypeCodeRole='1']")  # type: ignore[attr-defined]
    return None if patient is None else str(patient.get("ParticipantObjectID"))


def _event_type(message: object) -> str | None:
    code = message.xml.find("EventIdentification/EventTypeCode")  # type: ignore[attr-defined]
    return None if code is None else str(code.get("originalText"))
