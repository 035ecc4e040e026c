"""db.studies, db.jobs, db.results and db.deliveries on SQLite and PostgreSQL (the ``database_url`` fixture runs each
test on both)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from db import deliveries, jobs, results, studies
from db.engine import SessionFactory
from db.models import DeliveryState, JobState, ResultKind, utcnow
from db.results import ResultRecord
from tests.helpers.pipeline import encoded_job_with_deliveries, facts


def test_duplicate_instance_changes_nothing(session_factory: SessionFactory) -> None:
    later = utcnow() + timedelta(seconds=60)
    with session_factory.begin() as s:
        first = studies.record_instance(s, facts("1.2.3.4"), later)
    with session_factory.begin() as s:
        again = studies.record_instance(s, facts("1.2.3.4"), later)
    assert first.created and not again.created
    assert first.study_id == again.study_id
    with session_factory() as s:
        assert len(studies.study_facts(s, first.study_id).instances) == 1


def test_release_brings_completion_forward_and_claims_once(session_factory: SessionFactory) -> None:
    with session_factory.begin() as s:
        study_id = studies.record_instance(s, facts("1.2.3.4"), utcnow() + timedelta(hours=1)).study_id
    with session_factory.begin() as s:
        assert studies.claim_due_studies(s, utcnow()) == [], "not due before release or the stability timeout"
        studies.schedule_completion(s, [study_id], utcnow())
    with session_factory.begin() as s:
        assert studies.claim_due_studies(s, utcnow()) == [study_id]
    with session_factory.begin() as s:
        assert studies.claim_due_studies(s, utcnow() + timedelta(hours=2)) == [], "a claimed study is not due again"
        studies.schedule_completion(s, [study_id], utcnow())
        assert studies.claim_due_studies(s, utcnow()) == [], "release without new instances makes no new job"


def test_job_lifecycle_is_recorded_as_events(session_factory: SessionFactory) -> None:
    with session_factory.begin() as s:
        study_id = studies.record_instance(s, facts("1.2.3.4"), utcnow()).study_id
        job_id = jobs.create_job(s, study_id, "baseline", JobState.QUEUED)
    with session_factory.begin() as s:
        work = jobs.start_attempt(s, job_id, utcnow() + timedelta(seconds=60), max_attempts=3)
        assert work.study_instance_uid == "1.2.3" and len(work.instances) == 1
        jobs.transition_job(s, job_id, JobState.ENCODED, "3 objects")
    with session_factory() as s:
        assert [state for state, _ in jobs.job_events(s, job_id)] == [
            JobState.QUEUED,
            JobState.ANALYZING,
            JobState.ENCODED,
        ]
        assert jobs.job_summary(s, job_id).attempts == 1


def test_result_objects_and_deliveries_are_idempotent(session_factory: SessionFactory) -> None:
    with session_factory.begin() as s:
        study_id = studies.record_instance(s, facts("1.2.3.4"), utcnow()).study_id
        job_id = jobs.create_job(s, study_id, "baseline", JobState.QUEUED)
    record = ResultRecord(ResultKind.SR, "1.2.840.10008.5.1.4.1.1.88.34", "2.25.1", "2.25.2", Path("/r/sr.dcm"))
    with session_factory.begin() as s:
        result_id = results.upsert_result_object(s, job_id, record)
        assert results.upsert_result_object(s, job_id, record) == result_id
        first = deliveries.ensure_deliveries(s, [result_id], ["pacs"])
        assert len(first) == 1
        deliveries.record_delivery_attempt(s, first[0], DeliveryState.SENT, None)
    with session_factory.begin() as s:
        assert deliveries.ensure_deliveries(s, [result_id], ["pacs"]) == [], "a sent object is not sent again"
        assert deliveries.job_delivery_states(s, job_id) == [DeliveryState.SENT]


def test_commitment_report_delivers_even_when_it_overtakes_the_sender(session_factory: SessionFactory) -> None:
    job_id, (first, second), (uid1, uid2) = encoded_job_with_deliveries(session_factory, 2)
    with session_factory.begin() as s:
        deliveries.prepare_commitment(s, first, "2.25.501")
        deliveries.prepare_commitment(s, second, "2.25.502")
    with session_factory.begin() as s:  # the report for the first arrives before its sender has returned
        assert deliveries.record_commitment(s, "2.25.501", {uid1}, {}) == [job_id]
        assert deliveries.await_commitment(s, first) is DeliveryState.SENT, "the sender does not undo the report"
        assert deliveries.await_commitment(s, second) is DeliveryState.COMMIT_PENDING
        assert jobs.job_state(s, job_id) is JobState.ENCODED, "not delivered until every object is committed"
    with session_factory.begin() as s:
        assert deliveries.record_commitment(s, "2.25.999", {uid2}, {}) == [], "another transaction changes nothing"
        deliveries.record_commitment(s, "2.25.502", {uid2}, {})
    with session_factory() as s:
        assert jobs.job_state(s, job_id) is JobState.DELIVERED


def test_a_failed_commitment_dead_letters_with_the_reason(session_factory: SessionFactory) -> None:
    job_id, (delivery,), (uid,) = encoded_job_with_deliveries(session_factory, 1)
    with session_factory.begin() as s:
        deliveries.prepare_commitment(s, delivery, "2.25.601")
        deliveries.await_commitment(s, delivery)
    with session_factory.begin() as s:
        deliveries.record_commitment(s, "2.25.601", set(), {uid: 0x0110})
    with session_factory() as s:
        work = deliveries.delivery_work(s, delivery)
        job = jobs.job_summary(s, job_id)
    assert work.state is DeliveryState.DEAD_LETTER
    assert job.state is JobState.DEAD_LETTER and "0x0110" in (job.reason or "")
