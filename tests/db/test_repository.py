"""Repository behaviour on SQLite and PostgreSQL (the ``database_url`` fixture runs each test on both)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from db import repository
from db.engine import SessionFactory
from db.models import DeliveryState, JobState, ResultKind, utcnow
from db.records import InstanceFacts, ResultRecord


def facts(sop: str, study: str = "1.2.3", body_part: str | None = "CHEST") -> InstanceFacts:
    return InstanceFacts(
        study_instance_uid=study,
        series_instance_uid=study + ".1",
        sop_instance_uid=sop,
        sop_class_uid="1.2.840.10008.5.1.4.1.1.1",
        transfer_syntax_uid="1.2.840.10008.1.2.1",
        modality="CR",
        body_part_examined=body_part,
        view_position="PA",
        study_description="THORAX",
        calling_ae_title="PACS",
        spool_path=Path("/spool") / study / f"{sop}.dcm",
    )


def test_duplicate_instance_changes_nothing(session_factory: SessionFactory) -> None:
    later = utcnow() + timedelta(seconds=60)
    with session_factory.begin() as s:
        first = repository.record_instance(s, facts("1.2.3.4"), later)
    with session_factory.begin() as s:
        again = repository.record_instance(s, facts("1.2.3.4"), later)
    assert first.created and not again.created
    assert first.study_id == again.study_id
    with session_factory() as s:
        assert len(repository.study_facts(s, first.study_id).instances) == 1


def test_release_brings_completion_forward_and_claims_once(session_factory: SessionFactory) -> None:
    with session_factory.begin() as s:
        study_id = repository.record_instance(s, facts("1.2.3.4"), utcnow() + timedelta(hours=1)).study_id
    with session_factory.begin() as s:
        assert repository.claim_due_studies(s, utcnow()) == [], "not due before release or the stability timeout"
        repository.schedule_completion(s, [study_id], utcnow())
    with session_factory.begin() as s:
        assert repository.claim_due_studies(s, utcnow()) == [study_id]
    with session_factory.begin() as s:
        assert repository.claim_due_studies(s, utcnow() + timedelta(hours=2)) == [], "a claimed study is not due again"
        repository.schedule_completion(s, [study_id], utcnow())
        assert repository.claim_due_studies(s, utcnow()) == [], "release without new instances makes no new job"


def test_job_lifecycle_is_recorded_as_events(session_factory: SessionFactory) -> None:
    with session_factory.begin() as s:
        study_id = repository.record_instance(s, facts("1.2.3.4"), utcnow()).study_id
        job_id = repository.create_job(s, study_id, "baseline", JobState.QUEUED)
    with session_factory.begin() as s:
        work = repository.start_attempt(s, job_id)
        assert work.study_instance_uid == "1.2.3" and len(work.instances) == 1
        repository.transition_job(s, job_id, JobState.ENCODED, "3 objects")
    with session_factory() as s:
        assert [state for state, _ in repository.job_events(s, job_id)] == [
            JobState.QUEUED,
            JobState.ANALYZING,
            JobState.ENCODED,
        ]
        assert repository.job_summary(s, job_id).attempts == 1


def test_result_objects_and_deliveries_are_idempotent(session_factory: SessionFactory) -> None:
    with session_factory.begin() as s:
        study_id = repository.record_instance(s, facts("1.2.3.4"), utcnow()).study_id
        job_id = repository.create_job(s, study_id, "baseline", JobState.QUEUED)
    record = ResultRecord(ResultKind.SR, "1.2.840.10008.5.1.4.1.1.88.34", "2.25.1", "2.25.2", Path("/r/sr.dcm"))
    with session_factory.begin() as s:
        result_id = repository.upsert_result_object(s, job_id, record)
        assert repository.upsert_result_object(s, job_id, record) == result_id
        first = repository.ensure_deliveries(s, [result_id], ["pacs"])
        assert len(first) == 1
        repository.record_delivery_attempt(s, first[0], DeliveryState.SENT, None)
    with session_factory.begin() as s:
        assert repository.ensure_deliveries(s, [result_id], ["pacs"]) == [], "a sent object is not sent again"
        assert repository.job_delivery_states(s, job_id) == [DeliveryState.SENT]
