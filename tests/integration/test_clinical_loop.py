"""The clinical loop end to end on the production stack (PostgreSQL + Redis) with ``cxr serve``: RG1, with marker
patient identifiers, made critical by its thresholds, reaches DCMTK storescp as SR + SC + GSPS, the RIS as an ORU
(python-hl7's MLLP server), the EHR as a FHIR Bundle and the pager as a signed webhook (HTTP servers); the dashboard
lists it as critical and an operator's acknowledgement is audited. The markers reach the RIS and the EHR and nothing
else: no log, database row, Redis key or value, or webhook body."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pydicom
import pytest
from fhir.resources.R4B.bundle import Bundle
from hl7apy.consts import VALIDATION_LEVEL
from hl7apy.parser import parse_message
from prometheus_client.parser import text_string_to_metric_families

from db.models import JobState
from tests.helpers.clinical_peers import http_peer, mllp_peer
from tests.helpers.dashboard import OPERATOR, VIEWER, logged_in, page_csrf, users_toml
from tests.helpers.databases import postgres_database, redis_broker, redis_contents
from tests.helpers.node import cxr_serve, stop, wait_for_files
from tests.helpers.peers import storescp, storescu
from tests.helpers.sr_content import sr_finding_codes
from worker.clinical.webhook import verify

pytestmark = pytest.mark.integration

MARKERS = {
    "PatientName": "PHIMARKER^NAME",
    "PatientID": "PHIMARKERID",
    "AccessionNumber": "PHIMARKERACC",
    "PlacerOrderNumberImagingServiceRequest": "PHIMARKERPLACER",
}
SECRET = "end-to-end-webhook-secret"


def outputs_toml(ris_port: int, ehr_url: str, pager_url: str) -> str:
    return f"""
[urgency]
critical_thresholds = {{ Nodule = 0.8 }}
acknowledge_within_s = 1

[[hl7]]
name = "ris"
host = "127.0.0.1"
port = {ris_port}

[[fhir]]
name = "ehr"
url = "{ehr_url}"
bearer_token = "tok3n"

[[webhooks]]
name = "pager"
url = "{pager_url}"
secret = "{SECRET}"
dashboard_url = "https://cxr.example.org"
"""


def wait_until(condition: object, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition() and time.monotonic() < deadline:  # type: ignore[operator]
        time.sleep(0.2)
    assert condition(), "timed out"  # type: ignore[operator]


def test_a_critical_study_closes_the_loop_without_leaking_phi(rg1_dataset: pydicom.Dataset, tmp_path: Path) -> None:
    marked = rg1_dataset.copy()
    for keyword, value in MARKERS.items():
        setattr(marked, keyword, value)
    source = tmp_path / "marked.dcm"
    marked.save_as(source, enforce_file_format=True)
    broker = redis_broker("clinical")
    with (
        postgres_database() as database_url,
        storescp(tmp_path / "pacs") as pacs_port,
        mllp_peer() as ris,
        http_peer() as ehr,
        http_peer() as pager,
    ):
        with cxr_serve(
            tmp_path / "node",
            pacs_port,
            database_url=database_url,
            broker_url=broker,
            extra_toml=outputs_toml(ris.port, ehr.url, pager.url),
            dashboard_toml=users_toml(VIEWER, OPERATOR),
        ) as node:
            assert storescu(source, node.port).returncode == 0
            objects = {str(ds.SOPClassUID): ds for ds in wait_for_files(tmp_path / "pacs", 3, timeout_s=60)}
            wait_until(lambda: [j.state for j in node.jobs()] == [JobState.DELIVERED])
            (job,) = node.jobs()
            viewer = logged_in(node.dashboard_url, VIEWER)
            operator = logged_in(node.dashboard_url, OPERATOR)
            listed = viewer.get("/api/jobs", params={"urgency": "critical"}).json()["rows"]
            assert [row["job_id"] for row in listed] == [job.job_id]
            time.sleep(1.0)  # past urgency.acknowledge_within_s
            (critical,) = viewer.get("/api/overview").json()["critical"]
            assert critical["job_id"] == job.job_id and critical["overdue"], "at the top of the overview, overdue"
            assert critical["labels"] == ["Nodule"]
            page = viewer.get("/", headers={"Accept": "text/html"}).text
            assert 'id="critical"' in page and '<tr class="overdue">' in page, "shown red"
            acknowledge = f"/api/jobs/{job.job_id}/acknowledge"
            assert viewer.post(acknowledge, headers={"X-CSRF-Token": page_csrf(viewer)}).status_code == 403
            assert operator.post(acknowledge).status_code == 403, "no CSRF token"
            answer = operator.post(acknowledge, headers={"X-CSRF-Token": page_csrf(operator)})
            assert answer.status_code == 200 and answer.json()["detail"] == f"job {job.job_id} acknowledged"
            audit = operator.get("/api/audit").json()
            assert any(
                a["actor"] == OPERATOR.name and f"acknowledged critical result of job {job.job_id}" in a["detail"]
                for a in audit
            )
            assert viewer.get("/api/overview").json()["critical"] == []
            metrics = {
                (s.name, tuple(sorted(s.labels.items()))): s.value
                for family in text_string_to_metric_families(operator.get("/metrics").text)
                for s in family.samples
            }
            assert metrics[("cxr_results_total", (("urgency", "critical"),))] == 1
            assert metrics[("cxr_acknowledgement_seconds_count", ())] == 1
            retract = f"/api/jobs/{job.job_id}/retract"
            why = {"reason": "this model version is withdrawn"}
            assert viewer.post(retract, json=why, headers={"X-CSRF-Token": page_csrf(viewer)}).status_code == 403
            assert operator.post(retract, json=why).status_code == 403, "no CSRF token"
            token = {"X-CSRF-Token": page_csrf(operator)}
            assert operator.post(retract, json={"reason": " "}, headers=token).status_code == 422, "a reason is needed"
            assert (
                operator.post(retract, json=why, headers=token)
                .json()["detail"]
                .startswith(f"job {job.job_id} retracted")
            )
            assert (
                operator.post(retract, json=why, headers=token).json()["detail"]
                == f"job {job.job_id} was already retracted"
            )
            kos = wait_for_files(tmp_path / "pacs", 4, timeout_s=60)
            wait_until(lambda: len(ris.received) == 2 and len(ehr.received) == 2)
            assert [j.state for j in node.jobs()] == [JobState.RETRACTED]
            audit = operator.get("/api/audit").json()
            assert any(a["detail"] == f"retract job {job.job_id}: this model version is withdrawn" for a in audit)
            in_redis = redis_contents(broker)
            stop(node)
            log = node.log.read_bytes()
        dump = subprocess.run(
            ["pg_dump", "--data-only", database_url.replace("postgresql+psycopg://", "postgresql://")],
            capture_output=True,
            check=True,
        ).stdout

    oru, correction = ris.received
    obr = next(segment for segment in correction.split("\r") if segment.startswith("OBR|"))
    assert obr.split("|")[25] == "C", "the RIS hears of the retraction as a correction"
    kos_classes = [ds.SOPClassUID for ds in kos]
    assert kos_classes.count("1.2.840.10008.5.1.4.1.1.88.59") == 1, "one rejection KOS, though asked twice"
    parsed = parse_message(oru.replace("\n", "\r"), validation_level=VALIDATION_LEVEL.STRICT, find_groups=True)
    parsed.validate()
    order = parsed.oru_r01_patient_result.oru_r01_order_observation
    obx_codes = [group.obx.obx_5.to_er7().split("^")[0] for group in order.oru_r01_observation][1:]
    assert obx_codes == sr_finding_codes(objects["1.2.840.10008.5.1.4.1.1.88.34"])
    assert "PHIMARKERID" in oru and "PHIMARKERACC" in oru and "PHIMARKERPLACER" in oru

    (headers, body), _ = ehr.received
    bundle = Bundle.model_validate_json(body)
    assert {e.resource.get_resource_type() for e in bundle.entry} >= {"DiagnosticReport", "Observation", "Device"}
    assert b"PHIMARKERID" in body and headers["Authorization"] == "Bearer tok3n"

    hook_headers, hook_body = pager.received[0]
    assert verify(SECRET, hook_body, hook_headers)
    assert b'"urgency":"critical"' in hook_body and b"https://cxr.example.org/studies/" in hook_body
    events = [json.loads(body)["event"] for _, body in pager.received[1:]]
    assert "retraction" in events and set(events) <= {"reminder", "retraction"}, "a reminder may have gone out too"
    hook_bodies = b"\n".join(body for _, body in pager.received)

    assert b"_kombu.binding." in in_redis, "the broker's own database was the one searched"
    for marker in MARKERS.values():
        needle = marker.split("^")[0].encode()
        for where, text in (("log", log), ("Redis", in_redis), ("database", dump), ("webhook", hook_bodies)):
            assert needle not in text, f"{marker} in {where}"
