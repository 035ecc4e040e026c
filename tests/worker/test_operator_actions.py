"""worker.operator_actions: operator actions on real databases (SQLite and PostgreSQL) and a real DCMTK destination;
each is audited."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from dashboard import queries
from dashboard.search import JobFilter
from db.audit import audit_trail
from db.deliveries import delivery_work
from db.engine import SessionFactory
from db.jobs import job_state, job_summary, start_attempt, transition_job
from db.models import AuditKind, DeliveryState, JobState, utcnow
from db.results import job_results
from tests.helpers.peers import free_port, received, storescp
from tests.helpers.pipeline import SETTINGS, context_for, queued_job, record, with_pacs
from worker.analyze import analyze_job
from worker.deliver import DeliveryOutcome, deliver_result
from worker.operator_actions import NotAllowedError, cancel_job, requeue_job, resend_delivery, set_destination_paused
from worker.sweeper import sweep


def operator_actions(session_factory: SessionFactory) -> list[tuple[str | None, str | None]]:
    with session_factory() as s:
        return [(a.actor, a.detail) for a in audit_trail(s, kinds=[AuditKind.OPERATOR_ACTION])]


def test_only_a_waiting_job_can_be_cancelled_and_a_worker_then_skips_it(
    tmp_path: Path, session_factory: SessionFactory, rg1: Path
) -> None:
    settings = with_pacs(tmp_path, free_port())
    job_id = record(session_factory, settings, rg1)
    cancel_job(session_factory, job_id, actor="otto")
    assert analyze_job(context_for(settings, session_factory), job_id).state is JobState.CANCELLED
    with pytest.raises(NotAllowedError):
        cancel_job(session_factory, job_id, actor="otto")
    with session_factory() as s:
        summary = job_summary(s, job_id)
        results = job_results(s, job_id)
    assert summary.reason == "cancelled by otto" and results == []
    assert operator_actions(session_factory) == [("otto", f"cancel job {job_id}")]
    requeue_job(session_factory, lambda _: None, job_id, actor="otto")
    with session_factory() as s:
        assert job_summary(s, job_id).reason is None, "a requeued job drops its old reason"


def test_a_dead_lettered_delivery_is_re_sent_and_the_job_settles(
    tmp_path: Path, session_factory: SessionFactory, rg1: Path
) -> None:
    port = free_port()
    settings = with_pacs(tmp_path, port, worker={"delivery_max_retries": 0})
    context = context_for(settings, session_factory)
    outcome = analyze_job(context, record(session_factory, settings, rg1))
    assert [deliver_result(context, d) for d in outcome.delivery_ids] == [DeliveryOutcome.DEAD_LETTER] * 3
    sent: list[int] = []
    with storescp(tmp_path / "pacs", port=port):
        for delivery_id in outcome.delivery_ids:
            resend_delivery(session_factory, sent.append, delivery_id, actor="otto")
        assert [deliver_result(context, d) for d in sent] == [DeliveryOutcome.SENT] * 3
    assert sent == list(outcome.delivery_ids) and len(received(tmp_path / "pacs")) == 3
    with session_factory() as s:
        job_id = delivery_work(s, sent[0]).job_id
        assert job_state(s, job_id) is JobState.DELIVERED
        detail = queries.study_detail(s, queries.study_of_job(s, job_id))
    (job,) = detail.jobs
    history = [d.history for r in job.results for d in r.deliveries]
    assert len(history) == 3 and all(
        [a.outcome for a in h] == [DeliveryState.PENDING, DeliveryState.SENT] for h in history
    ), "each attempt is kept with its outcome"
    assert all("pacs" in (h[0].error or "") and h[1].error is None for h in history)
    with pytest.raises(NotAllowedError):
        resend_delivery(session_factory, sent.append, sent[0], actor="otto")
    assert operator_actions(session_factory)[0] == ("otto", f"re-send delivery {sent[-1]} to pacs")


def test_a_paused_destination_gets_nothing_until_resumed(
    tmp_path: Path, session_factory: SessionFactory, rg1: Path
) -> None:
    with storescp(tmp_path / "pacs") as port:
        settings = with_pacs(tmp_path, port)
        context = context_for(settings, session_factory)
        set_destination_paused(session_factory, lambda _: None, "pacs", True, actor="otto")
        outcome = analyze_job(context, record(session_factory, settings, rg1))
        assert [deliver_result(context, d) for d in outcome.delivery_ids] == [DeliveryOutcome.PAUSED] * 3
        with session_factory() as s:
            assert {delivery_work(s, d).attempts for d in outcome.delivery_ids} == {0}, "not counted"
        assert not any((tmp_path / "pacs").glob("*")), "nothing was sent"
        resent: list[int] = []
        sweep(session_factory, SETTINGS, lambda _: None, resent.append, now=utcnow() + timedelta(hours=1))
        assert resent == [], "the sweeper leaves a paused destination's deliveries alone"
        sent: list[int] = []
        assert set_destination_paused(session_factory, sent.append, "pacs", False, actor="otto") == 3
        assert sorted(sent) == sorted(outcome.delivery_ids)
        assert [deliver_result(context, d) for d in sent] == [DeliveryOutcome.SENT] * 3
    assert [detail for _, detail in operator_actions(session_factory)] == [
        "resume destination pacs",
        "pause destination pacs",
    ]


def test_job_timings_are_recorded_for_the_dashboard(session_factory: SessionFactory) -> None:
    job_id = queued_job(session_factory, lease_in_s=60)
    with session_factory.begin() as s:
        start_attempt(s, job_id, utcnow() + timedelta(seconds=60), SETTINGS.max_attempts)
        transition_job(s, job_id, JobState.ENCODED, "3 objects")
        transition_job(s, job_id, JobState.DELIVERED, "all objects delivered")
    with session_factory() as s:
        (row,) = queries.job_page(s, 1, 10, JobFilter(), "").rows
    assert row.analysis_seconds is not None and 0 <= row.analysis_seconds < 5
    assert row.end_to_end_seconds is not None and row.end_to_end_seconds >= row.analysis_seconds
    assert row.finished_at is not None
    requeue_job(session_factory, lambda _: None, job_id)
    with session_factory() as s:
        (row,) = queries.job_page(s, 1, 10, JobFilter(), "").rows
    assert (row.finished_at, row.analysis_seconds, row.end_to_end_seconds) == (None, None, None)
