"""worker.sweeper: the sweeper and the attempt limit: lost messages, dead workers and poison studies, decided by the
database."""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path

from config.settings import Settings
from db import deliveries, jobs, results, studies
from db.engine import SessionFactory, make_engine, make_session_factory
from db.migrate import upgrade
from db.models import DeliveryState, JobState, ResultKind, utcnow
from db.results import ResultRecord
from tests.helpers.databases import postgres_database
from tests.helpers.pipeline import SETTINGS, context_for, facts, queued_job, record
from worker.analyze import analyze_job
from worker.operator_actions import requeue_job
from worker.sweeper import sweep


def run_sweep(session_factory: SessionFactory, sent: list[int], resent: list[int] | None = None) -> None:
    sweep(session_factory, SETTINGS, sent.append, (resent if resent is not None else []).append)


def test_a_lost_message_is_sent_again_once(session_factory: SessionFactory) -> None:
    fresh = queued_job(session_factory, lease_in_s=60)
    lost = queued_job(session_factory, lease_in_s=-1)
    sent: list[int] = []
    run_sweep(session_factory, sent)
    assert sent == [lost], "only the job whose lease ran out"
    run_sweep(session_factory, sent)
    assert sent == [lost], "its lease was renewed: not sent twice"
    with session_factory() as s:
        assert "sent again by the sweeper" in (jobs.job_events(s, lost)[-1][1] or "")
        assert jobs.job_state(s, fresh) is JobState.QUEUED


def test_a_job_whose_worker_died_is_sent_again_then_dead_lettered(session_factory: SessionFactory) -> None:
    job_id = queued_job(session_factory, lease_in_s=60)
    sent: list[int] = []
    for _attempt in (1, 2):
        with session_factory.begin() as s:  # a worker starts, then dies: its lease runs out
            jobs.start_attempt(s, job_id, utcnow() - timedelta(seconds=1), SETTINGS.max_attempts)
        run_sweep(session_factory, sent)
    assert sent == [job_id], "sent again after the first death"
    with session_factory() as s:
        summary = jobs.job_summary(s, job_id)
    assert summary.state is JobState.DEAD_LETTER and "gave up after 2 attempts" in (summary.reason or "")
    assert summary.lease_expires_at is None


def test_a_worker_refuses_a_job_that_used_its_attempts(
    tmp_path: Path, session_factory: SessionFactory, rg1: Path
) -> None:
    settings = Settings(data_dir=tmp_path / "var", worker=SETTINGS)
    job_id = record(session_factory, settings, rg1)
    with session_factory.begin() as s:
        for _ in range(SETTINGS.max_attempts):
            jobs.start_attempt(s, job_id, utcnow() - timedelta(seconds=1), SETTINGS.max_attempts)
        jobs.transition_job(s, job_id, JobState.QUEUED, "redelivered", lease_expires_at=utcnow())
    assert analyze_job(context_for(settings, session_factory), job_id).state is JobState.DEAD_LETTER
    requeued: list[int] = []
    requeue_job(session_factory, requeued.append, job_id)
    assert analyze_job(context_for(settings, session_factory), job_id).state is JobState.COMPLETED, (
        "an operator's requeue gives fresh attempts"
    )


def test_a_duplicate_message_does_not_start_a_second_analysis(
    tmp_path: Path, session_factory: SessionFactory, rg1: Path
) -> None:
    settings = Settings(data_dir=tmp_path / "var", worker=SETTINGS)
    job_id = record(session_factory, settings, rg1)
    with session_factory.begin() as s:
        jobs.start_attempt(s, job_id, utcnow() + timedelta(seconds=60), SETTINGS.max_attempts)
    assert analyze_job(context_for(settings, session_factory), job_id).state is JobState.ANALYZING
    with session_factory() as s:
        assert jobs.job_summary(s, job_id).attempts == 1


def pending_delivery(session_factory: SessionFactory) -> int:
    job_id = queued_job(session_factory, lease_in_s=60)
    with session_factory.begin() as s:
        result_id = results.upsert_result_object(
            s, job_id, ResultRecord(ResultKind.SR, "1.2.840.10008.5.1.4.1.1.88.34", "2.25.77", "2.25.78", Path("/r"))
        )
        (delivery_id,) = deliveries.ensure_deliveries(s, [result_id], ["pacs"])
    return delivery_id


def test_a_stale_pending_delivery_is_sent_again(session_factory: SessionFactory) -> None:
    delivery_id = pending_delivery(session_factory)
    resent: list[int] = []
    run_sweep(session_factory, [], resent)
    assert resent == [], "recently touched"
    sweep(session_factory, SETTINGS, lambda _: None, resent.append, now=utcnow() + timedelta(seconds=601))
    assert resent == [delivery_id]


def test_a_delivery_never_tried_is_sent_again_after_the_queue_lease(session_factory: SessionFactory) -> None:
    """Its first message was lost (the broker was down when the analysis finished): no backoff holds it, so it need
    not wait the delivery lease. One that was tried and is backing off does wait."""
    never_tried = pending_delivery(session_factory)
    with session_factory.begin() as s:
        result_id = results.upsert_result_object(
            s,
            jobs.list_jobs(s)[0].job_id,
            ResultRecord(ResultKind.SC, "1.2.840.10008.5.1.4.1.1.7", "2.25.79", "2.25.80", Path("/s")),
        )
        (backing_off,) = deliveries.ensure_deliveries(s, [result_id], ["pacs"])
        deliveries.record_delivery_attempt(s, backing_off, DeliveryState.PENDING, "association refused")
    resent: list[int] = []
    sweep(session_factory, SETTINGS, lambda _: None, resent.append, now=utcnow() + timedelta(seconds=61))
    assert resent == [never_tried]


def test_a_commitment_report_that_never_comes_is_asked_for_again(session_factory: SessionFactory) -> None:
    delivery_id = pending_delivery(session_factory)
    with session_factory.begin() as s:
        deliveries.prepare_commitment(s, delivery_id, "2.25.700")
        deliveries.await_commitment(s, delivery_id)
    resent: list[int] = []
    sweep(session_factory, SETTINGS, lambda _: None, resent.append, now=utcnow() + timedelta(seconds=601))
    assert resent == [delivery_id]
    with session_factory() as s:
        work = deliveries.delivery_work(s, delivery_id)
    assert work.state.value == "PENDING", "the delivery task will store it and ask for commitment again"


def test_several_sweepers_on_postgresql_send_each_lost_job_once() -> None:
    """Rows are taken with SELECT ... FOR UPDATE SKIP LOCKED, so sweepers on several hosts never both send a job."""
    with postgres_database() as database_url:
        upgrade(database_url)
        engine = make_engine(database_url)
        try:
            sessions = make_session_factory(engine)
            with sessions.begin() as s:
                study_id = studies.record_instance(s, facts("1.2.3.4"), utcnow() + timedelta(hours=1)).study_id
                lost = [
                    jobs.create_job(s, study_id, "baseline", JobState.QUEUED, None, utcnow() - timedelta(seconds=1))
                    for _ in range(60)
                ]
            start = threading.Barrier(4)
            sent: list[int] = []
            lock = threading.Lock()

            def one_sweeper() -> None:
                start.wait()
                for _ in range(3):
                    sweep(sessions, SETTINGS, lambda job_id: _append(lock, sent, job_id), lambda _: None)

            threads = [threading.Thread(target=one_sweeper) for _ in range(4)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=60)
        finally:
            engine.dispose()
    assert sorted(sent) == sorted(lost), "every lost job sent again exactly once, by whichever sweeper took it"


def _append(lock: threading.Lock, sent: list[int], job_id: int) -> None:
    with lock:
        sent.append(job_id)
