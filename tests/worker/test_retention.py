"""worker.retention and db.retention on real databases: spooled files, result files, whole studies' records and audit
rows go when allowed, and work in progress is never touched."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from config.records import RetentionSettings
from config.settings import Settings
from db import audit, jobs, results, studies
from db.engine import SessionFactory
from db.models import (
    AuditKind,
    Delivery,
    Finding,
    Instance,
    Job,
    JobEvent,
    JobState,
    LabelScore,
    ResultObject,
    Study,
    utcnow,
)
from tests.helpers.pipeline import context_for, record
from worker.analyze import analyze_job
from worker.operator_actions import NotAllowedError, cancel_job, requeue_job
from worker.retention import apply_retention, purge_records, purge_results, purge_spool


def spool_paths(sessions: SessionFactory | Session) -> dict[int, tuple[Path, bool]]:
    """Each instance's spool path and whether it is marked purged."""
    if isinstance(sessions, Session):
        return {i.id: (Path(i.spool_path), i.purged_at is not None) for i in sessions.scalars(select(Instance))}
    with sessions() as s:
        return spool_paths(s)


def test_after_delivery_the_pixels_go_and_the_records_stay(
    tmp_path: Path, session_factory: SessionFactory, rg1: Path
) -> None:
    settings = Settings(data_dir=tmp_path / "var")
    job_id = record(session_factory, settings, rg1)
    with session_factory.begin() as s:  # the study is complete: only its job holds it
        studies.claim_due_studies(s, utcnow() + timedelta(hours=2))
    after_delivery = RetentionSettings(purge_after_delivery=True)
    assert purge_spool(session_factory, after_delivery) == 0, "a queued job still needs its images"
    assert analyze_job(context_for(settings, session_factory), job_id).state is JobState.COMPLETED
    assert purge_spool(session_factory, after_delivery) == 1
    ((path, purged),) = spool_paths(session_factory).values()
    assert purged and not path.exists()
    with session_factory() as s:
        assert results.job_findings(s, job_id) and results.job_results(s, job_id), "records stay"
    assert purge_spool(session_factory, after_delivery) == 0, "nothing twice"
    with pytest.raises(NotAllowedError, match="retention"):
        requeue_job(session_factory, lambda _: None, job_id)


def test_old_files_go_whatever_happened_but_never_during_work(
    tmp_path: Path, session_factory: SessionFactory, rg1: Path, rg3: Path
) -> None:
    settings = Settings(data_dir=tmp_path / "var")
    old_job, busy_job = record(session_factory, settings, rg3), record(session_factory, settings, rg1)
    with session_factory.begin() as s:
        studies.claim_due_studies(s, utcnow() + timedelta(hours=2))
        jobs.transition_job(s, old_job, JobState.ANALYZING)  # a worker found it is not a chest radiograph
        jobs.transition_job(s, old_job, JobState.NOT_ELIGIBLE, reason="not a chest radiograph")
        jobs.transition_job(s, busy_job, JobState.ANALYZING, "attempt 1")
        s.execute(update(Instance).values(received_at=utcnow() - timedelta(days=10)))
    days = RetentionSettings(spool_days=7)
    assert purge_spool(session_factory, days) == 1
    states = {path.name: (purged, path.exists()) for path, purged in spool_paths(session_factory).values()}
    assert sorted(states.values()) == [(False, True), (True, False)], "the analysing study keeps its file"
    assert purge_spool(session_factory, RetentionSettings()) == 0, "retention is off by default"


def test_every_revision_of_an_instance_goes_with_it(tmp_path: Path, session_factory: SessionFactory, rg1: Path) -> None:
    """A corrected instance leaves its earlier revision's file beside the newest: retention removes them all."""
    settings = Settings(data_dir=tmp_path / "var")
    job_id = record(session_factory, settings, rg1)
    ((first, _),) = spool_paths(session_factory).values()
    second = first.with_name(first.name.removesuffix(".dcm") + ".r2.dcm")
    second.write_bytes(first.read_bytes())
    unrelated = first.with_name("1.2.3.r2.dcm")
    unrelated.write_bytes(b"another instance's revision")
    with session_factory.begin() as s:
        s.execute(update(Instance).values(spool_path=str(second), revision=2))
        studies.claim_due_studies(s, utcnow() + timedelta(hours=2))
    assert analyze_job(context_for(settings, session_factory), job_id).state is JobState.COMPLETED
    assert purge_spool(session_factory, RetentionSettings(purge_after_delivery=True)) == 1
    assert not first.exists() and not second.exists()
    assert unrelated.exists(), "only this instance's revisions"


def _analysed(tmp_path: Path, session_factory: SessionFactory, rg1: Path) -> tuple[Settings, int]:
    settings = Settings(data_dir=tmp_path / "var")
    job_id = record(session_factory, settings, rg1)
    with session_factory.begin() as s:
        studies.claim_due_studies(s, utcnow() + timedelta(hours=2))
    assert analyze_job(context_for(settings, session_factory), job_id).state is JobState.COMPLETED
    return settings, job_id


def test_result_files_go_after_their_days_and_never_while_the_study_has_work(
    tmp_path: Path, session_factory: SessionFactory, rg1: Path
) -> None:
    _, job_id = _analysed(tmp_path, session_factory, rg1)
    with session_factory.begin() as s:
        made = [Path(r.path) for r in results.job_results(s, job_id)]
        study_id = jobs.job_summary(s, job_id).study_id
        newer = jobs.create_job(s, study_id, "baseline", JobState.QUEUED)
    assert len(made) == 3 and all(p.exists() for p in made)
    later = utcnow() + timedelta(days=2)
    assert purge_results(session_factory, 1, later) == 0, "a queued job of the study may still supersede them"
    cancel_job(session_factory, newer)
    assert purge_results(session_factory, 3, later) == 0, "finished only two days ago"
    assert purge_results(session_factory, 1, later) == 3
    assert not any(p.exists() for p in made)
    with session_factory() as s:
        assert results.job_findings(s, job_id) and len(results.job_results(s, job_id)) == 3, "records stay"
        assert s.scalar(select(func.count()).where(ResultObject.purged_at.is_not(None))) == 3
    assert purge_results(session_factory, 1, later) == 0, "nothing twice"


def test_a_study_s_records_go_whole_and_a_re_sent_study_gets_the_same_objects(
    tmp_path: Path, session_factory: SessionFactory, rg1: Path
) -> None:
    _, job_id = _analysed(tmp_path, session_factory, rg1)
    with session_factory() as s:
        first = sorted(r.sop_instance_uid for r in results.job_results(s, job_id))
        files = [Path(r.path) for r in results.job_results(s, job_id)] + [p for p, _ in spool_paths(s).values()]
    assert purge_records(session_factory, 1, utcnow() + timedelta(hours=12)) == 0, "idle for half a day only"
    assert purge_records(session_factory, 1, utcnow() + timedelta(days=2)) == 1
    assert not any(p.exists() for p in files)
    with session_factory() as s:
        for table in (Study, Instance, Job, JobEvent, Finding, LabelScore, ResultObject, Delivery):
            assert s.scalar(select(func.count()).select_from(table)) == 0, table.__tablename__
    _, again = _analysed(tmp_path, session_factory, rg1)
    with session_factory() as s:
        assert sorted(r.sop_instance_uid for r in results.job_results(s, again)) == first, "the same UIDs"


def test_records_of_a_study_with_work_in_progress_stay(
    tmp_path: Path, session_factory: SessionFactory, rg1: Path
) -> None:
    settings = Settings(data_dir=tmp_path / "var")
    record(session_factory, settings, rg1)  # queued, and its completion still pending
    assert purge_records(session_factory, 1, utcnow() + timedelta(days=30)) == 0
    with session_factory() as s:
        assert s.scalar(select(func.count()).select_from(Job)) == 1


def test_apply_retention_prunes_old_audit_rows_only_when_asked(tmp_path: Path, session_factory: SessionFactory) -> None:
    with session_factory.begin() as s:
        audit.record_audit(s, AuditKind.LOGIN_SUCCEEDED, None, "10.0.0.1", "viewer", actor="ann")
    keep = Settings(data_dir=tmp_path / "var")
    apply_retention(session_factory, keep, utcnow() + timedelta(days=400))
    prune = Settings(data_dir=tmp_path / "var", retention=RetentionSettings(audit_days=365))
    apply_retention(session_factory, prune, utcnow() + timedelta(days=300))
    with session_factory() as s:
        assert len(audit.audit_trail(s)) == 1
    apply_retention(session_factory, prune, utcnow() + timedelta(days=400))
    with session_factory() as s:
        assert audit.audit_trail(s) == []
