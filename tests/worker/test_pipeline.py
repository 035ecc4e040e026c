"""worker.analyze and worker.deliver: the pipeline stages as plain functions, without Celery: analyse a recorded job,
then deliver to a real storescp."""

from __future__ import annotations

from pathlib import Path

import pydicom
import pytest

from config.settings import Settings
from db import deliveries, jobs, results
from db.engine import SessionFactory
from db.models import JobState, ResultKind
from tests.helpers.peers import free_port, received, storescp
from tests.helpers.pipeline import context_for, record, retry_when_due, with_pacs
from worker.analyze import analyze_job
from worker.deliver import DeliveryOutcome, deliver_result


def test_analyse_then_deliver_exactly_once(tmp_path: Path, session_factory: SessionFactory, rg1: Path) -> None:
    with storescp(tmp_path / "pacs") as port:
        settings = with_pacs(tmp_path, port)
        context = context_for(settings, session_factory)
        job_id = record(session_factory, settings, rg1)
        outcome = analyze_job(context, job_id)
        assert outcome.state is JobState.ENCODED and len(outcome.delivery_ids) == 3
        assert [deliver_result(context, d) for d in outcome.delivery_ids] == [DeliveryOutcome.SENT] * 3
        assert deliver_result(context, outcome.delivery_ids[0]) is DeliveryOutcome.ALREADY_SENT
        first_uids = sorted(ds.SOPInstanceUID for ds in received(tmp_path / "pacs"))
        # A re-run (operator requeue) yields the same objects and sends nothing twice.
        with session_factory.begin() as s:
            jobs.transition_job(s, job_id, JobState.QUEUED, "requeued")
        again = analyze_job(context, job_id)
    assert again.state is JobState.DELIVERED and again.delivery_ids == ()
    with session_factory() as s:
        assert sorted(r.sop_instance_uid for r in results.job_results(s, job_id)) == first_uids
        states = [state for state, _ in jobs.job_events(s, job_id)]
        findings = results.job_findings(s, job_id)
    assert JobState.DELIVERED in states and states[0] is JobState.QUEUED
    assert findings and all(f.code_scheme == "SCT" for f in findings)


def test_without_destinations_results_are_kept(tmp_path: Path, session_factory: SessionFactory, rg1: Path) -> None:
    settings = Settings(data_dir=tmp_path / "var")
    job_id = record(session_factory, settings, rg1)
    outcome = analyze_job(context_for(settings, session_factory), job_id)
    assert outcome.state is JobState.COMPLETED
    assert len(list(settings.results_dir.rglob("*.dcm"))) == 3


def test_undecodable_image_fails_and_the_study_gets_a_not_performed_sr(
    tmp_path: Path, session_factory: SessionFactory, rg1: Path
) -> None:
    broken = tmp_path / "broken.dcm"
    ds = pydicom.dcmread(rg1)
    ds.PixelData = ds.PixelData[:100]
    ds.save_as(broken)
    with storescp(tmp_path / "pacs") as port:
        settings = with_pacs(tmp_path, port)
        context = context_for(settings, session_factory)
        job_id = record(session_factory, settings, broken)
        outcome = analyze_job(context, job_id)
        assert outcome.state is JobState.FAILED and len(outcome.delivery_ids) == 1
        assert deliver_result(context, outcome.delivery_ids[0]) is DeliveryOutcome.SENT
        (sr,) = received(tmp_path / "pacs")
    assert sr.SOPClassUID == "1.2.840.10008.5.1.4.1.1.88.34" and "NOT PERFORMED" in sr.SeriesDescription
    with session_factory() as s:
        job = jobs.job_summary(s, job_id)
    assert job.state is JobState.FAILED and "cannot be decoded" in (job.reason or ""), "the job stays FAILED"


def test_a_late_image_makes_a_follow_up_sr_that_supersedes_the_first(
    tmp_path: Path, session_factory: SessionFactory, rg1: Path
) -> None:
    from tests.helpers.encode_cases import second_view

    settings = Settings(data_dir=tmp_path / "var")
    context = context_for(settings, session_factory)
    first_job = record(session_factory, settings, rg1)
    analyze_job(context, first_job)
    late = tmp_path / "late.dcm"
    second_view(pydicom.dcmread(rg1)).save_as(late, enforce_file_format=True)
    follow_up = record(session_factory, settings, late)
    assert analyze_job(context, follow_up).state is JobState.COMPLETED
    with session_factory() as s:
        (first_sr,) = [r for r in results.job_results(s, first_job) if r.kind is ResultKind.SR]
        (second_sr,) = [r for r in results.job_results(s, follow_up) if r.kind is ResultKind.SR]
    superseding = pydicom.dcmread(second_sr.path)
    reference = superseding.PredecessorDocumentsSequence[0].ReferencedSeriesSequence[0].ReferencedSOPSequence[0]
    assert reference.ReferencedSOPInstanceUID == first_sr.sop_instance_uid
    assert (
        len(superseding.CurrentRequestedProcedureEvidenceSequence[0].ReferencedSeriesSequence[0].ReferencedSOPSequence)
        == 2
    )


def test_unreachable_destination_retries_then_dead_letters(
    tmp_path: Path, session_factory: SessionFactory, rg1: Path
) -> None:
    # A backoff of 5 to 10 s: the duplicate message below comes well before it on a loaded machine too (with the
    # default 1 to 2 s, less than a second of margin was left after the one-second early tolerance).
    settings = with_pacs(tmp_path, free_port(), worker={"delivery_max_retries": 1, "delivery_backoff_s": 10.0})
    context = context_for(settings, session_factory)
    outcome = analyze_job(context, record(session_factory, settings, rg1))
    delivery = outcome.delivery_ids[0]
    assert deliver_result(context, delivery) is DeliveryOutcome.RETRY
    assert deliver_result(context, delivery) is DeliveryOutcome.NOT_DUE, "a duplicate message before the backoff"
    assert retry_when_due(context, delivery) is DeliveryOutcome.DEAD_LETTER
    with session_factory() as s:
        work = deliveries.delivery_work(s, delivery)
        job = jobs.job_summary(s, work.job_id)
    assert work.attempts == 2 and job.state is JobState.DEAD_LETTER and "pacs" in (job.reason or "")


@pytest.mark.parametrize(("attempt", "low", "high"), [(1, 1.0, 2.0), (3, 4.0, 8.0), (30, 150.0, 300.0)])
def test_backoff_grows_and_is_capped(attempt: int, low: float, high: float) -> None:
    from config.settings import WorkerSettings
    from worker.deliver import backoff_seconds

    assert low <= backoff_seconds(attempt, WorkerSettings()) <= high


def test_jpeg_overlay_is_delivered_in_its_own_syntax(
    tmp_path: Path, session_factory: SessionFactory, rg1: Path
) -> None:
    with storescp(tmp_path / "pacs") as port:
        settings = with_pacs(tmp_path, port, results={"sc_compression": "jpeg"})
        context = context_for(settings, session_factory)
        outcome = analyze_job(context, record(session_factory, settings, rg1))
        assert [deliver_result(context, d) for d in outcome.delivery_ids] == [DeliveryOutcome.SENT] * 3
        sc = next(ds for ds in received(tmp_path / "pacs") if ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.7")
    assert sc.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.4.50"


def test_a_lateral_only_chest_study_gets_a_not_performed_sr(
    tmp_path: Path, session_factory: SessionFactory, rg1: Path
) -> None:
    lateral = tmp_path / "lateral.dcm"
    ds = pydicom.dcmread(rg1)
    ds.ViewPosition = "LL"
    ds.save_as(lateral)
    settings = Settings(data_dir=tmp_path / "var")
    job_id = record(session_factory, settings, lateral)
    assert analyze_job(context_for(settings, session_factory), job_id).state is JobState.NOT_ELIGIBLE
    with session_factory() as s:
        (sr,) = results.job_results(s, job_id)
        job = jobs.job_summary(s, job_id)
    assert sr.kind is ResultKind.SR and "frontal" in (job.reason or "")
    assert "NOT PERFORMED" in pydicom.dcmread(sr.path).SeriesDescription


def test_a_dead_lettered_job_is_requeued_and_delivered_once_the_destination_is_back(
    tmp_path: Path, session_factory: SessionFactory, rg1: Path
) -> None:
    from worker.operator_actions import requeue_job

    port = free_port()
    settings = with_pacs(tmp_path, port, worker={"delivery_max_retries": 0})
    context = context_for(settings, session_factory)
    job_id = record(session_factory, settings, rg1)
    first = analyze_job(context, job_id)
    assert deliver_result(context, first.delivery_ids[0]) is DeliveryOutcome.DEAD_LETTER
    requeued: list[int] = []
    requeue_job(session_factory, requeued.append, job_id)
    assert requeued == [job_id]
    with storescp(tmp_path / "pacs", "PACS", port):
        again = analyze_job(context, job_id)
        assert sorted(again.delivery_ids) == sorted(first.delivery_ids), "the same deliveries, not new ones"
        assert [deliver_result(context, d) for d in again.delivery_ids] == [DeliveryOutcome.SENT] * 3
    with session_factory() as s:
        assert jobs.job_summary(s, job_id).state is JobState.DELIVERED
    assert len(received(tmp_path / "pacs")) == 3


def test_a_destination_that_refuses_an_object_is_not_retried_in_a_loop(
    tmp_path: Path, session_factory: SessionFactory, rg1: Path
) -> None:
    """A real SCP answers 0xA900 (data set does not match SOP class): one attempt, then a dead letter with the
    reason."""
    from pydicom.uid import ExplicitVRLittleEndian
    from pynetdicom import AE, evt

    attempts: list[str] = []

    def refuse(event: evt.Event) -> int:
        attempts.append(str(event.request.AffectedSOPInstanceUID))
        return 0xA900

    ae = AE(ae_title="PACS")
    for sop_class in ("1.2.840.10008.5.1.4.1.1.88.34", "1.2.840.10008.5.1.4.1.1.7", "1.2.840.10008.5.1.4.1.1.11.1"):
        ae.add_supported_context(sop_class, ExplicitVRLittleEndian)
    server = ae.start_server(("127.0.0.1", 0), block=False, evt_handlers=[(evt.EVT_C_STORE, refuse)])
    try:
        settings = with_pacs(tmp_path, server.server_address[1])
        context = context_for(settings, session_factory)
        job_id = record(session_factory, settings, rg1)
        outcome = analyze_job(context, job_id)
        results = {d: deliver_result(context, d) for d in outcome.delivery_ids}
    finally:
        server.shutdown()
    assert sorted(results.values()) == [DeliveryOutcome.DEAD_LETTER] * 3
    assert len(attempts) == 3 and len(set(attempts)) == 3, "each object was sent exactly once"
    with session_factory() as s:
        job = jobs.job_summary(s, job_id)
    assert job.state is JobState.DEAD_LETTER and "0xA900" in (job.reason or "")
