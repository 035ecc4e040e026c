"""dashboard.api, dashboard.pages and dashboard.metrics: the dashboard and its API on a real node, after real studies
went through the embedded pipeline."""

from __future__ import annotations

import time

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select

from db.audit import audit_trail
from db.deliveries import deliveries_by_state
from db.jobs import job_counts_by_state, job_events, job_state
from db.models import AuditEvent, AuditKind, Delivery, DeliveryState, Instance, Job, JobState
from tests.helpers.dashboard import OPERATOR, PHI_MARKERS, UPLOAD_LIMIT, VIEWER, Site, logged_in, page_csrf
from tests.helpers.node import wait_for_files

pytestmark = pytest.mark.integration

PAGES = ["/", "/studies", "/studies?state=DEAD_LETTER", "/model", "/audit", "/upload"]
API = ["/api/overview", "/api/jobs", "/api/model", "/api/audit", "/api/openapi.json", "/metrics"]


def job_of(site: Site, study_index: int) -> tuple[int, int]:
    """(job id, study id) of one of the site's studies."""
    (job,) = site.node.jobs(str(site.studies[study_index].StudyInstanceUID))
    return job.job_id, job.study_id


def test_unauthenticated_requests_are_refused(site: Site) -> None:
    client = httpx.Client(base_url=site.node.dashboard_url)
    page = client.get("/", headers={"Accept": "text/html"})
    assert page.status_code == 303 and page.headers["location"].startswith("/login")
    for path in ("/api/overview", "/api/jobs", "/metrics", "/studies/1"):
        response = client.get(path)
        assert response.status_code in (401, 303), path
    assert client.post("/api/jobs/1/requeue").status_code == 401
    assert client.get("/healthz").text == "ok"


def test_wrong_password_is_refused_and_audited(site: Site) -> None:
    client = httpx.Client(base_url=site.node.dashboard_url)
    token = page_csrf(client, "/login")
    response = client.post("/login", data={"username": OPERATOR.name, "password": "wrong", "csrf_token": token})
    assert response.status_code == 401 and "cxr_session" not in response.headers.get("set-cookie", "x")
    assert client.get("/api/overview").status_code == 401
    with site.sessions() as s:
        failed = audit_trail(s, kinds=[AuditKind.LOGIN_FAILED])
    assert failed and failed[0].actor == OPERATOR.name


def test_session_cookie_is_httponly_and_strict(site: Site) -> None:
    client = httpx.Client(base_url=site.node.dashboard_url)
    response = client.get("/login")
    cookie = response.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie


def test_viewer_may_look_but_not_act(site: Site) -> None:
    job_id, study_id = job_of(site, 1)
    viewer = logged_in(site.node.dashboard_url, VIEWER)
    assert viewer.get("/api/overview").status_code == 200
    token = page_csrf(viewer)
    for path in (
        f"/api/jobs/{job_id}/requeue",
        f"/api/jobs/{job_id}/cancel",
        f"/api/studies/{study_id}/reveal",
        "/api/destinations/pacs/pause",
    ):
        assert viewer.post(path, headers={"X-CSRF-Token": token}).status_code == 403, path
    assert viewer.get("/api/audit").status_code == 403
    with site.sessions() as s:
        assert job_state(s, job_id) is JobState.DEAD_LETTER


def test_post_without_the_csrf_token_is_refused(site: Site) -> None:
    job_id, _ = job_of(site, 1)
    operator = logged_in(site.node.dashboard_url, OPERATOR)
    assert operator.post(f"/api/jobs/{job_id}/requeue").status_code == 403
    assert operator.post(f"/api/jobs/{job_id}/requeue", headers={"X-CSRF-Token": "forged"}).status_code == 403
    assert operator.post(f"/api/jobs/{job_id}/requeue", data={"csrf_token": "forged"}).status_code == 403
    with site.sessions() as s:
        assert job_state(s, job_id) is JobState.DEAD_LETTER


def test_no_page_or_response_shows_phi_unless_revealed(site: Site) -> None:
    _, study_id = job_of(site, 0)
    operator = logged_in(site.node.dashboard_url, OPERATOR)
    for path in [*PAGES, f"/studies/{study_id}", *API, f"/api/studies/{study_id}"]:
        response = operator.get(
            path, headers={"Accept": "text/html"} if not path.startswith(("/api", "/metrics")) else {}
        )
        assert response.status_code == 200, path
        assert not any(marker in response.text for marker in PHI_MARKERS), f"PHI on {path}"
        assert str(site.studies[0].StudyInstanceUID) not in response.text, f"study UID on {path}"

    token = page_csrf(operator, f"/studies/{study_id}")
    revealed = operator.post(f"/studies/{study_id}/reveal", data={"csrf_token": token})
    assert revealed.status_code == 200 and all(marker in revealed.text for marker in PHI_MARKERS)
    api = operator.post(f"/api/studies/{study_id}/reveal", headers={"X-CSRF-Token": token}).json()
    assert (api["patient_name"], api["patient_id"], api["accession_number"]) == PHI_MARKERS
    with site.sessions() as s:
        reveals = audit_trail(s, kinds=[AuditKind.PHI_REVEALED])
    assert [(r.actor, r.detail) for r in reveals] == [(OPERATOR.name, f"study {study_id}")] * 2
    again = operator.get(f"/studies/{study_id}", headers={"Accept": "text/html"})
    assert not any(marker in again.text for marker in PHI_MARKERS), "a reveal must last one response only"
    assert not any(marker in site.node.log.read_text(errors="replace") for marker in PHI_MARKERS)


def test_overview_shows_workers_and_destination_health(site: Site) -> None:
    viewer = logged_in(site.node.dashboard_url, VIEWER)
    overview = viewer.get("/api/overview").json()
    workers = {w["queues"]: w for w in overview["workers"]}
    assert set(workers) == {"gpu", "io"}, "cxr serve runs workers for both queues"
    assert (workers["gpu"]["device"], workers["gpu"]["detector"]) == ("cpu", "baseline")
    assert (workers["io"]["device"], workers["io"]["detector"]) == ("-", "-"), "a delivery worker computes nothing"
    assert overview["jobs_by_state"]["DEAD_LETTER"] >= 1 and overview["dead_letter_jobs"] >= 1
    (pacs,) = overview["destinations"]
    if not site.pacs_started:
        assert pacs["echo_ok"] is False and pacs["detail"] == "no association"
    site.start_pacs()
    deadline = time.monotonic() + 30
    while not pacs["echo_ok"]:
        assert time.monotonic() < deadline, f"destination health never recovered: {pacs}"
        time.sleep(0.5)
        (pacs,) = viewer.get("/api/overview").json()["destinations"]


def test_operator_requeues_a_dead_lettered_job(site: Site) -> None:
    job_id, study_id = job_of(site, 0)
    site.start_pacs()
    operator = logged_in(site.node.dashboard_url, OPERATOR)
    token = page_csrf(operator, f"/studies/{study_id}")
    response = operator.post(f"/api/jobs/{job_id}/requeue", headers={"X-CSRF-Token": token})
    assert response.status_code == 200 and response.json() == {"ok": True, "detail": f"job {job_id} queued"}
    with site.sessions() as s:
        events = job_events(s, job_id)
        audit = audit_trail(s, kinds=[AuditKind.OPERATOR_ACTION])
    dead = max(i for i, (state, _) in enumerate(events) if state is JobState.DEAD_LETTER)
    assert events[dead + 1] == (JobState.QUEUED, f"requeued by {OPERATOR.name}")
    assert (audit[0].actor, audit[0].detail) == (OPERATOR.name, f"requeue job {job_id} (was DEAD_LETTER)")
    site.wait_for_states({JobState.DELIVERED}, 1)
    wait_for_files(site.pacs_dir, 3)
    assert operator.post(f"/api/jobs/{job_id}/cancel", headers={"X-CSRF-Token": token}).status_code == 409


def test_metrics_match_the_database(site: Site) -> None:
    site.wait_for_states({JobState.DELIVERED, JobState.DEAD_LETTER}, 3)
    operator = logged_in(site.node.dashboard_url, OPERATOR)
    text = operator.get("/metrics").text
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    with site.sessions() as s:
        instances = s.scalar(select(func.count()).select_from(Instance))
        accepted = s.scalar(
            select(func.count()).select_from(AuditEvent).where(AuditEvent.kind == AuditKind.ASSOCIATION_ACCEPTED)
        )
        attempts = s.scalar(select(func.sum(Delivery.attempts)))
        by_state = job_counts_by_state(s)
        analysed = s.scalar(select(func.count()).select_from(Job).where(Job.analysis_seconds.is_not(None)))
        finished = s.scalar(select(func.count()).select_from(Job).where(Job.end_to_end_seconds.is_not(None)))
        dead_deliveries = deliveries_by_state(s).get(DeliveryState.DEAD_LETTER, 0)
    assert instances == 3 and samples[("cxr_instances_received_total", ())] == 3
    assert accepted == 3 and samples[("cxr_associations_total", (("outcome", "accepted"),))] == 3
    for state in JobState:
        assert samples[("cxr_jobs", (("state", state.value),))] == by_state.get(state, 0), state
    assert samples[("cxr_delivery_attempts_total", ())] == attempts
    assert samples[("cxr_analysis_seconds_count", ())] == analysed == 3
    assert samples[("cxr_end_to_end_seconds_count", ())] == finished == 3
    assert samples[("cxr_dead_letters", (("kind", "job"),))] == by_state.get(JobState.DEAD_LETTER, 0) == 2
    assert samples[("cxr_dead_letters", (("kind", "delivery"),))] == dead_deliveries
    assert ("cxr_queue_depth", (("queue", "gpu"),)) in samples
    assert "ZZMARKER" not in text


def test_uploads_that_cannot_be_analysed_are_refused_with_a_reason(site: Site) -> None:
    operator = logged_in(site.node.dashboard_url, OPERATOR)
    token = page_csrf(operator, "/upload")
    html = {"Accept": "text/html"}
    junk = operator.post("/upload", data={"csrf_token": token}, files={"file": ("notes.txt", b"hello")}, headers=html)
    assert junk.status_code == 422 and "not a DICOM, PNG or JPEG file" in junk.text
    huge = operator.post(
        "/upload",
        data={"csrf_token": token},
        headers=html,
        files={"file": ("big.dcm", b"\0" * (UPLOAD_LIMIT + 1024 * 1024))},
    )
    assert huge.status_code == 413
    viewer = logged_in(site.node.dashboard_url, VIEWER)
    refused = viewer.post(
        "/upload", data={"csrf_token": page_csrf(viewer, "/upload")}, files={"file": ("x.png", b"\x89PNG\r\n\x1a\n")}
    )
    assert refused.status_code == 403, "an upload enters the pipeline: operators only"
