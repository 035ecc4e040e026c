"""dashboard.queries, dashboard.search and dashboard.metrics_queries on both databases: windows, percentiles, paging,
filters, search and Prometheus histograms."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from sqlalchemy import select

from config.privacy import accession_digest
from dashboard import metrics_queries, queries
from dashboard.search import JobFilter
from db import jobs, studies
from db.engine import SessionFactory
from db.models import Job, JobState, Study, utcnow
from tests.helpers.pipeline import facts

KEY = "a site's digest key"


def finished_jobs(session_factory: SessionFactory, seconds: list[float], minutes_ago: list[float]) -> list[int]:
    now = utcnow()
    ids = []
    with session_factory.begin() as s:
        for index, (latency, ago) in enumerate(zip(seconds, minutes_ago, strict=True)):
            study_id = studies.record_instance(s, facts(f"1.2.3.{index}"), now + timedelta(hours=1)).study_id
            job_id = jobs.create_job(s, study_id, "baseline" if index % 2 else "xrv:all", JobState.QUEUED)
            job = s.get(Job, job_id)
            assert job is not None
            job.state = JobState.DELIVERED if index % 3 else JobState.FAILED
            job.finished_at = now - timedelta(minutes=ago)
            job.end_to_end_seconds = latency
            job.analysis_seconds = latency / 2
            ids.append(job_id)
    return ids


def test_windows_count_finished_jobs_with_their_percentiles(session_factory: SessionFactory) -> None:
    latencies = [float(v) for v in range(1, 101)]
    finished_jobs(session_factory, [*latencies, 999.0], [1.0] * 50 + [37.0] * 50 + [300.0])
    with session_factory() as s:
        hour = queries.window_stats(s, utcnow(), timedelta(hours=1), 12)
        day = queries.window_stats(s, utcnow(), timedelta(days=1), 24)
    assert hour.finished == 100 and sum(hour.buckets) == 100
    assert hour.buckets[-1] == 50 and hour.buckets[4] == 50, "37 min ago lies in the fifth 5-minute bucket"
    assert hour.p50_seconds == 50.5 and hour.p95_seconds is not None and 95 <= hour.p95_seconds <= 96
    assert day.finished == 101 and day.p95_seconds is not None and day.p95_seconds > hour.p95_seconds


def test_pages_and_filters(session_factory: SessionFactory) -> None:
    ids = finished_jobs(session_factory, [1.0] * 7, [1.0] * 7)
    with session_factory() as s:
        first = queries.job_page(s, 1, 3, JobFilter(), KEY)
        last = queries.job_page(s, 3, 3, JobFilter(), KEY)
        failed = queries.job_page(s, 1, 50, JobFilter(state=JobState.FAILED), KEY)
        baseline = queries.job_page(s, 1, 50, JobFilter(detector="baseline"), KEY)
    assert first.total == 7 and first.pages == 3 and [r.job_id for r in first.rows] == ids[::-1][:3]
    assert [r.job_id for r in last.rows] == [ids[0]]
    assert {r.state for r in failed.rows} == {JobState.FAILED} and failed.total == 3
    assert {r.detector for r in baseline.rows} == {"baseline"} and baseline.total == 3


def test_search_by_study_uid_accession_digest_day_received_and_calling_ae(session_factory: SessionFactory) -> None:
    """The accession is found through its keyed digest only: the number is in no row, and another key finds nothing."""
    now = utcnow()
    with session_factory.begin() as s:
        for index, (accession, ae, days_ago) in enumerate([("ACC-7", "MODALITY1", 0), ("ACC-8", "PACS", 3)]):
            found = replace(
                facts(f"1.2.9.{index}", study=f"1.2.9{index}"),
                calling_ae_title=ae,
                accession_digest=accession_digest(accession, KEY),
            )
            study_id = studies.record_instance(s, found, now + timedelta(hours=1)).study_id
            s.get_one(Study, study_id).last_received_at = now - timedelta(days=days_ago)
            jobs.create_job(s, study_id, "baseline", JobState.QUEUED)

    def studies_found(search: JobFilter, key: str = KEY) -> list[str]:
        with session_factory() as s:
            page = queries.job_page(s, 1, 50, search, key)
            return [s.get_one(Study, row.study_id).study_instance_uid for row in page.rows]

    assert studies_found(JobFilter(study="1.2.91")) == ["1.2.91"]
    assert studies_found(JobFilter(study=" ACC-7 ")) == ["1.2.90"]
    assert studies_found(JobFilter(study="ACC-7"), key="another site's key") == []
    assert studies_found(JobFilter(study="ACC")) == [], "an exact match, never a prefix"
    assert studies_found(JobFilter(calling_ae="MODALITY1")) == ["1.2.90"]
    today = datetime.now().date()
    assert studies_found(JobFilter(received_from=today)) == ["1.2.90"]
    assert studies_found(JobFilter(received_to=today - timedelta(days=2))) == ["1.2.91"]
    assert studies_found(JobFilter(received_from=today - timedelta(days=3), received_to=today)) == ["1.2.91", "1.2.90"]
    with session_factory() as s:
        stored = [str(value) for row in s.execute(select(Study)).scalars() for value in vars(row).values()]
    assert not any("ACC-" in value for value in stored)


def test_histograms_are_cumulative_like_prometheus(session_factory: SessionFactory) -> None:
    finished_jobs(session_factory, [0.5, 3.0, 3.0, 40.0, 5000.0], [1.0] * 5)
    with session_factory() as s:
        snapshot = metrics_queries.metrics_snapshot(s)
    e2e = snapshot.end_to_end_seconds
    cumulative = dict(zip(e2e.bounds, e2e.cumulative, strict=True))
    assert (cumulative[1.0], cumulative[2.5], cumulative[5.0], cumulative[60.0], cumulative[3600.0]) == (1, 1, 3, 4, 4)
    assert e2e.count == 5 and e2e.total == 5046.5
    assert snapshot.analysis_seconds.count == 5
