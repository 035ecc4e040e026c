"""worker.retention and db.retention: retention on real databases: spooled files go when allowed, the records stay, work
in progress is never touched."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from config.settings import RetentionSettings, Settings
from db import jobs, results, studies
from db.engine import SessionFactory
from db.models import Instance, JobState, utcnow
from tests.helpers.pipeline import context_for, record
from worker.analyze import analyze_job
from worker.operator_actions import NotAllowedError, requeue_job
from worker.retention import purge_spool


def spool_paths(session_factory: SessionFactory) -> dict[int, tuple[Path, bool]]:
    """Each instance's spool path and whether it is marked purged."""
    with session_factory() as s:
        return {i.id: (Path(i.spool_path), i.purged_at is not None) for i in s.scalars(select(Instance))}


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
