"""worker.deliver with worker.clinical: a result's HL7 ORU, FHIR Bundle and webhook, sent to real peers (python-hl7's
MLLP server, an HTTP server) through the same delivery rows as DICOM: retry, dead letter, re-send, exactly once."""

from __future__ import annotations

import ssl
import time
from pathlib import Path

import pydicom
import pytest
from fhir.resources.R4B.bundle import Bundle
from hl7apy.consts import VALIDATION_LEVEL
from hl7apy.parser import parse_message
from sqlalchemy import select

from config.outputs import FhirEndpoint, Hl7Endpoint, UrgencySettings, WebhookEndpoint
from config.settings import Settings
from db import jobs
from db.engine import SessionFactory
from db.models import Base, Channel, Delivery, DeliveryState, JobState, Urgency
from tests.helpers.certificates import make_pki
from tests.helpers.clinical_peers import DROP, HttpPeer, MllpPeer, cutting_peer, http_peer, mllp_peer
from tests.helpers.peers import free_port
from tests.helpers.pipeline import context_for, record, retry_when_due
from tests.helpers.sr_content import sr_finding_codes
from worker.analyze import AnalysisOutcome, analyze_job
from worker.clinical import hl7 as oru
from worker.clinical.webhook import verify
from worker.context import WorkerContext
from worker.deliver import DeliveryOutcome, deliver_result
from worker.operator_actions import resend_delivery

MARKERS = {
    "PatientName": "PHIMARKER^NAME",
    "PatientID": "PHIMARKERID",
    "AccessionNumber": "PHIMARKERACC",
    "PlacerOrderNumberImagingServiceRequest": "PHIMARKERPLACER",
}
SECRET = "a-webhook-secret-of-some-length"
CRITICAL_NODULE = UrgencySettings(critical_thresholds={"Nodule": 0.8})  # RG1's first nodule is 0.87 (baseline)


@pytest.fixture
def marked(tmp_path: Path, rg1: Path) -> Path:
    ds = pydicom.dcmread(rg1)
    for keyword, value in MARKERS.items():
        setattr(ds, keyword, value)
    path = tmp_path / "marked.dcm"
    ds.save_as(path, enforce_file_format=True)
    return path


def clinical_settings(
    tmp_path: Path,
    mllp: MllpPeer | int | None = None,
    fhir: HttpPeer | int | None = None,
    hook: HttpPeer | None = None,
    urgency: UrgencySettings = CRITICAL_NODULE,
    retries: int = 3,
) -> Settings:
    port = lambda peer: peer if isinstance(peer, int) else peer.port  # noqa: E731
    return Settings(
        data_dir=tmp_path / "var",
        urgency=urgency,
        hl7=[Hl7Endpoint(name="ris", host="127.0.0.1", port=port(mllp), timeout_s=5)] if mllp is not None else [],
        fhir=[FhirEndpoint(name="ehr", url=f"http://127.0.0.1:{port(fhir)}/fhir", bearer_token="tok3n", timeout_s=5)]
        if fhir is not None
        else [],
        webhooks=[WebhookEndpoint(name="pager", url=hook.url, secret=SECRET)] if hook is not None else [],
        worker={"delivery_max_retries": retries},  # type: ignore[arg-type]
    )


def analysed(
    session_factory: SessionFactory, settings: Settings, source: Path
) -> tuple[WorkerContext, int, AnalysisOutcome]:
    context = context_for(settings, session_factory)
    job_id = record(session_factory, settings, source)
    return context, job_id, analyze_job(context, job_id)


def by_channel(session_factory: SessionFactory, ids: tuple[int, ...], channel: Channel) -> int:
    with session_factory() as s:
        (delivery_id,) = [d.id for d in s.scalars(select(Delivery).where(Delivery.id.in_(ids))) if d.channel is channel]
    return delivery_id


def delivery(session_factory: SessionFactory, delivery_id: int) -> tuple[DeliveryState, str | None, int]:
    with session_factory() as s:
        d = s.get(Delivery, delivery_id)
        assert d is not None
        return d.state, d.last_error, d.attempts


def every_row(session_factory: SessionFactory) -> str:
    """Every value of every table, as one text to search."""
    with session_factory() as s:
        return "\n".join(repr(row) for table in Base.metadata.sorted_tables for row in s.execute(select(table)))


def written_sr(tmp_path: Path) -> pydicom.Dataset:
    (path,) = (tmp_path / "var" / "results").rglob("SR/*.dcm")
    return pydicom.dcmread(path)


def test_a_critical_result_reaches_the_ris_the_ehr_and_the_pager(
    tmp_path: Path, session_factory: SessionFactory, marked: Path
) -> None:
    with mllp_peer() as ris, http_peer() as ehr, http_peer() as pager:
        settings = clinical_settings(tmp_path, ris, ehr, pager)
        context, job_id, outcome = analysed(session_factory, settings, marked)
        assert outcome.state is JobState.ENCODED and len(outcome.delivery_ids) == 3
        assert [deliver_result(context, d) for d in outcome.delivery_ids] == [DeliveryOutcome.SENT] * 3
    with session_factory() as s:
        job = jobs.get_job(s, job_id)
        assert job.state is JobState.DELIVERED and job.urgency is Urgency.CRITICAL

    (message,) = ris.received
    parsed = parse_message(message.replace("\n", "\r"), validation_level=VALIDATION_LEVEL.STRICT, find_groups=True)
    parsed.validate()
    assert parsed.msh.msh_9.to_er7() == "ORU^R01^ORU_R01" and parsed.msh.msh_12.to_er7() == "2.5.1"
    result = parsed.oru_r01_patient_result
    assert result.oru_r01_patient.pid.pid_3.cx_1.to_er7() == "PHIMARKERID"
    order = result.oru_r01_order_observation
    assert order.obr.obr_2.to_er7() == "PHIMARKERPLACER" and order.obr.obr_3.to_er7() == "PHIMARKERACC"
    assert order.oru_r01_timing_qty.tq1.tq1_9.cwe_1.to_er7() == "S", "a critical result is STAT"
    observations = [group.obx for group in order.oru_r01_observation]
    assert observations[0].obx_8.to_er7() == "AA", "the overall OBX flags the study critical"
    finding_codes = [obx.obx_5.to_er7().split("^")[0] for obx in observations[1:]]
    assert finding_codes == sr_finding_codes(written_sr(tmp_path)), "one OBX per SR finding, same codes, same order"
    assert {obx.obx_8.to_er7() for obx in observations[1:]} <= {"AA", "A"}
    assert "AA" in {obx.obx_8.to_er7() for obx in observations[1:]}

    (headers, body) = ehr.received[0]
    assert headers["Authorization"] == "Bearer tok3n"
    bundle = Bundle.model_validate_json(body)
    urls = {entry.fullUrl for entry in bundle.entry}
    references = [ref for entry in bundle.entry for ref in _references(entry.resource.model_dump())]
    assert references and all(ref in urls for ref in references), "every reference resolves inside the bundle"
    kinds = [entry.resource.get_resource_type() for entry in bundle.entry]
    assert kinds.count("Observation") == len(finding_codes) and "DiagnosticReport" in kinds and "Device" in kinds
    assert b"PHIMARKERID" in body

    ((hook_headers, hook_body),) = pager.received
    assert verify(SECRET, hook_body, hook_headers)
    assert not verify("another-secret-entirely", hook_body, hook_headers), "a forgery is rejected"
    assert not verify(SECRET, hook_body, hook_headers, now=time.time() + 3600), "a replay"
    rows = every_row(session_factory)
    for marker in MARKERS.values():
        assert marker.split("^")[0].encode() not in hook_body, f"{marker} in the webhook body"
        assert marker.split("^")[0] not in rows, f"{marker} in the database"


def _references(value: object) -> list[str]:
    if isinstance(value, dict):
        found = [value["reference"]] if isinstance(value.get("reference"), str) else []
        return found + [ref for v in value.values() for ref in _references(v)]
    if isinstance(value, list):
        return [ref for v in value for ref in _references(v)]
    return []


def test_ack_error_then_accept_is_delivered_exactly_once(
    tmp_path: Path, session_factory: SessionFactory, marked: Path
) -> None:
    with mllp_peer(["AE"]) as ris:
        context, _, outcome = analysed(session_factory, clinical_settings(tmp_path, ris), marked)
        (delivery_id,) = outcome.delivery_ids
        assert deliver_result(context, delivery_id) is DeliveryOutcome.RETRY
        assert retry_when_due(context, delivery_id) is DeliveryOutcome.SENT
        assert deliver_result(context, delivery_id) is DeliveryOutcome.ALREADY_SENT
    assert len(ris.received) == 2, "the AE'd message and its one successful retry"
    ids = {msh10(m) for m in ris.received}
    assert len(ids) == 1, "a retry carries the same MSH-10"


def msh10(message: str) -> str:
    return message.split("\r")[0].split("|")[9]


def test_ack_reject_dead_letters_with_its_text_and_a_resend_sends_again(
    tmp_path: Path, session_factory: SessionFactory, marked: Path
) -> None:
    with mllp_peer(["AR"]) as ris:
        context, job_id, outcome = analysed(session_factory, clinical_settings(tmp_path, ris), marked)
        (delivery_id,) = outcome.delivery_ids
        assert deliver_result(context, delivery_id) is DeliveryOutcome.DEAD_LETTER
        state, error, _ = delivery(session_factory, delivery_id)
        assert state is DeliveryState.DEAD_LETTER and "ACK AR: Patient not found in the RIS" in (error or "")
        resend_delivery(session_factory, lambda _: None, delivery_id, actor="operator")
        assert deliver_result(context, delivery_id) is DeliveryOutcome.SENT
    with session_factory() as s:
        assert jobs.job_state(s, job_id) is JobState.DELIVERED
    assert len(ris.received) == 2


def test_a_connection_cut_mid_message_is_retried(tmp_path: Path, session_factory: SessionFactory, marked: Path) -> None:
    with cutting_peer() as port:
        context, _, outcome = analysed(session_factory, clinical_settings(tmp_path, mllp=port), marked)
        (delivery_id,) = outcome.delivery_ids
        assert deliver_result(context, delivery_id) is DeliveryOutcome.RETRY
    state, error, attempts = delivery(session_factory, delivery_id)
    assert state is DeliveryState.PENDING and attempts == 1 and "MLLP exchange failed" in (error or "")


def test_a_dropped_connection_is_retried(tmp_path: Path, session_factory: SessionFactory, marked: Path) -> None:
    with mllp_peer([DROP]) as ris:
        context, _, outcome = analysed(session_factory, clinical_settings(tmp_path, ris), marked)
        (delivery_id,) = outcome.delivery_ids
        assert deliver_result(context, delivery_id) is DeliveryOutcome.RETRY
        assert "MLLP exchange failed" in (delivery(session_factory, delivery_id)[1] or "")
        assert retry_when_due(context, delivery_id) is DeliveryOutcome.SENT


@pytest.mark.parametrize("channel", [Channel.HL7, Channel.FHIR])
def test_a_peer_down_past_the_retries_is_dead_lettered_then_replayed(
    tmp_path: Path, session_factory: SessionFactory, marked: Path, channel: Channel
) -> None:
    port = free_port()
    settings = (
        clinical_settings(tmp_path, mllp=port, retries=1)
        if channel is Channel.HL7
        else clinical_settings(tmp_path, fhir=port, retries=1)
    )
    context, _, outcome = analysed(session_factory, settings, marked)
    (delivery_id,) = outcome.delivery_ids
    assert deliver_result(context, delivery_id) is DeliveryOutcome.RETRY
    assert retry_when_due(context, delivery_id) is DeliveryOutcome.DEAD_LETTER
    assert delivery(session_factory, delivery_id)[0] is DeliveryState.DEAD_LETTER
    # The peer comes back on its configured port: an operator's re-send delivers it.
    with mllp_peer(port=port) if channel is Channel.HL7 else http_peer(port=port) as back:
        resend_delivery(session_factory, lambda _: None, delivery_id, actor="operator")
        assert deliver_result(context, delivery_id) is DeliveryOutcome.SENT
        assert len(back.received) == 1


def test_fhir_server_errors_retry_and_a_bad_request_is_dead_lettered(
    tmp_path: Path, session_factory: SessionFactory, marked: Path
) -> None:
    with http_peer([500, 400]) as ehr:
        context, _, outcome = analysed(session_factory, clinical_settings(tmp_path, fhir=ehr), marked)
        (delivery_id,) = outcome.delivery_ids
        assert deliver_result(context, delivery_id) is DeliveryOutcome.RETRY
        assert retry_when_due(context, delivery_id) is DeliveryOutcome.DEAD_LETTER
        state, error, _ = delivery(session_factory, delivery_id)
        assert state is DeliveryState.DEAD_LETTER and "HTTP 400: scripted 400" in (error or "")
        resend_delivery(session_factory, lambda _: None, delivery_id, actor="operator")
        assert deliver_result(context, delivery_id) is DeliveryOutcome.SENT
    bodies = ehr.json_bodies()
    assert len(bodies) == 3 and bodies[0] == bodies[2], "every attempt sends the same Bundle"


def test_a_requeued_job_sends_no_second_clinical_message(
    tmp_path: Path, session_factory: SessionFactory, marked: Path
) -> None:
    with mllp_peer() as ris, http_peer() as ehr, http_peer() as pager:
        context, job_id, outcome = analysed(session_factory, clinical_settings(tmp_path, ris, ehr, pager), marked)
        for delivery_id in outcome.delivery_ids:
            assert deliver_result(context, delivery_id) is DeliveryOutcome.SENT
        with session_factory.begin() as s:
            jobs.transition_job(s, job_id, JobState.QUEUED, "requeued")
        again = analyze_job(context, job_id)
    assert again.state is JobState.DELIVERED and again.delivery_ids == ()
    assert (len(ris.received), len(ehr.received), len(pager.received)) == (1, 1, 1)


def test_a_non_critical_result_pages_no_one(tmp_path: Path, session_factory: SessionFactory, marked: Path) -> None:
    with http_peer() as pager:
        settings = clinical_settings(tmp_path, hook=pager, urgency=UrgencySettings())  # Pneumothorax only
        _, job_id, outcome = analysed(session_factory, settings, marked)
    assert outcome.delivery_ids == () and outcome.state is JobState.COMPLETED
    with session_factory() as s:
        assert jobs.get_job(s, job_id).urgency is Urgency.ABNORMAL


def test_the_message_ids_are_deterministic() -> None:
    from db.models import MessagePurpose

    first = oru.control_id("1.2.3", "ris", MessagePurpose.RESULT)
    assert first == oru.control_id("1.2.3", "ris", MessagePurpose.RESULT) and len(first) == 20
    assert first != oru.control_id("1.2.3", "ris", MessagePurpose.REMINDER)
    assert first != oru.control_id("1.2.4", "ris", MessagePurpose.RESULT)
    assert first != oru.control_id("1.2.3", "ris2", MessagePurpose.RESULT)


def test_mllp_over_tls_verifies_the_ris_certificate(
    tmp_path: Path, session_factory: SessionFactory, marked: Path
) -> None:
    pki = make_pki(tmp_path / "pki")
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(pki.server_certificate, pki.server_key)
    with mllp_peer(tls=server) as ris:
        trusted = Hl7Endpoint(
            name="ris", host="127.0.0.1", port=ris.port, tls=True, tls_ca_certificates=pki.ca, timeout_s=5
        )
        settings = clinical_settings(tmp_path, ris).model_copy(update={"hl7": [trusted]})
        context, _, outcome = analysed(session_factory, settings, marked)
        (delivery_id,) = outcome.delivery_ids
        assert deliver_result(context, delivery_id) is DeliveryOutcome.SENT
        assert len(ris.received) == 1
        untrusted = trusted.model_copy(update={"tls_ca_certificates": pki.other_ca})
        other = context_for(settings.model_copy(update={"hl7": [untrusted]}), session_factory)
        with session_factory.begin() as s:
            d = s.get(Delivery, delivery_id)
            assert d is not None
            d.state = DeliveryState.PENDING
        assert deliver_result(other, delivery_id) is DeliveryOutcome.RETRY
        assert "SSL" in (delivery(session_factory, delivery_id)[1] or ""), "a certificate it cannot verify"
    assert len(ris.received) == 1, "nothing reached a peer the node could not verify"
