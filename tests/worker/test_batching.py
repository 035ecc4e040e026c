"""worker.batching: dynamic batching: one detector pass over the images of several queued jobs, taken from the
database."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pydicom

from config.settings import Settings, WorkerSettings
from db.engine import SessionFactory
from db.jobs import job_events, job_state, job_summary
from db.models import Job, JobState, Study
from db.studies import study_facts
from models.baseline import BaselineDetector
from models.imaging import DecodedImage
from models.protocol import Detector, ImageResult
from tests.helpers.flow import write_copies
from tests.helpers.pipeline import record
from worker.analyze import analyze_batch, analyze_job
from worker.celery_app import create_celery_app
from worker.context import WorkerContext
from worker.queue import TaskQueue


class Recorder:
    """The baseline detector, noting the size of every pass it is given."""

    def __init__(self, passes: list[int]) -> None:
        self.inner, self.passes = BaselineDetector(), passes
        self.labels, self.provenance = self.inner.labels, self.inner.provenance
        self.abnormal_threshold = self.inner.abnormal_threshold

    def detect(self, images: Sequence[DecodedImage]) -> list[ImageResult]:
        self.passes.append(len(images))
        return self.inner.detect(images)


@dataclass
class RecordingContext(WorkerContext):
    passes: list[int] = field(default_factory=list)

    def detector(self, name: str) -> Detector:
        return Recorder(self.passes)


def studies(rg1: Path, directory: Path, count: int) -> list[Path]:
    return write_copies(pydicom.dcmread(rg1), directory, count, "batch")


def setup(
    tmp_path: Path, sessions: SessionFactory, rg1: Path, count: int, **worker: float
) -> tuple[RecordingContext, list[int]]:
    settings = Settings(data_dir=tmp_path / "var", worker=WorkerSettings(**worker))  # type: ignore[arg-type]
    context = RecordingContext(settings, sessions, TaskQueue(create_celery_app(settings)))
    return context, [record(sessions, settings, path) for path in studies(rg1, tmp_path / "studies", count)]


def states(sessions: SessionFactory, job_ids: list[int]) -> list[JobState]:
    with sessions() as session:
        return [job_state(session, job_id) for job_id in job_ids]


def test_one_pass_takes_queued_jobs_up_to_the_batch_size(
    tmp_path: Path, session_factory: SessionFactory, rg1: Path
) -> None:
    context, jobs = setup(tmp_path, session_factory, rg1, 5, batch_max_images=3)
    outcomes = analyze_batch(context, jobs[0])
    assert context.passes == [3] and len(outcomes) == 3
    assert states(session_factory, jobs) == [JobState.COMPLETED] * 3 + [JobState.QUEUED] * 2
    # The companions' own messages arrive later and find the work done: no second pass.
    assert analyze_job(context, jobs[1]).state is JobState.COMPLETED
    assert context.passes == [3]
    with session_factory() as session:
        events = job_events(session, jobs[1])
    assert any((detail or "").startswith("attempt 1 on ") for state, detail in events if state is JobState.ANALYZING)


def test_batching_is_off_by_default(tmp_path: Path, session_factory: SessionFactory, rg1: Path) -> None:
    context, jobs = setup(tmp_path, session_factory, rg1, 2)
    assert analyze_job(context, jobs[0]).state is JobState.COMPLETED
    assert context.passes == [1] and states(session_factory, jobs)[1] is JobState.QUEUED


def test_a_batch_waits_for_jobs_that_arrive_within_the_wait(
    tmp_path: Path, session_factory: SessionFactory, rg1: Path
) -> None:
    context, jobs = setup(tmp_path, session_factory, rg1, 1, batch_max_images=2, batch_wait_ms=5000)
    late = studies(rg1, tmp_path / "late", 2)[1]
    arrived: list[int] = []
    timer = threading.Timer(0.3, lambda: arrived.append(record(session_factory, context.settings, late)))
    timer.start()
    started = time.monotonic()
    outcomes = analyze_batch(context, jobs[0])
    timer.join()
    assert context.passes == [2] and len(outcomes) == 2
    assert time.monotonic() - started < 5.0, "a full batch runs at once, without waiting out the wait"
    assert states(session_factory, [*jobs, *arrived]) == [JobState.COMPLETED] * 2


def test_stat_jobs_join_a_batch_first(tmp_path: Path, session_factory: SessionFactory, rg1: Path) -> None:
    context, jobs = setup(tmp_path, session_factory, rg1, 4, batch_max_images=2)
    with session_factory.begin() as session:
        study = session.get(Study, job_summary(session, jobs[3]).study_id)
        assert study is not None
        study.stat = True
    analyze_batch(context, jobs[0])
    assert states(session_factory, jobs) == [JobState.COMPLETED, JobState.QUEUED, JobState.QUEUED, JobState.COMPLETED]


def test_an_undecodable_companion_fails_alone(tmp_path: Path, session_factory: SessionFactory, rg1: Path) -> None:
    context, jobs = setup(tmp_path, session_factory, rg1, 2, batch_max_images=2)
    with session_factory() as session:
        (spooled,) = [i.spool_path for i in study_facts(session, job_summary(session, jobs[1]).study_id).instances]
    data = pydicom.dcmread(spooled)
    data.PixelData = data.PixelData[:1000]  # truncated pixel data: the header reads, the pixels do not
    data.save_as(spooled)
    outcomes = analyze_batch(context, jobs[0])
    assert [o.state for o in outcomes] == [JobState.COMPLETED, JobState.FAILED]
    assert context.passes == [1], "the detector saw only the image it could read"


def test_a_retried_job_runs_alone_and_is_no_ones_companion(
    tmp_path: Path, session_factory: SessionFactory, rg1: Path
) -> None:
    """A study that crashed its worker may do it again: on its retries it must not take other jobs' attempts."""
    context, jobs = setup(tmp_path, session_factory, rg1, 4, batch_max_images=2)
    with session_factory.begin() as session:
        job = session.get(Job, jobs[1])
        assert job is not None
        job.attempts = 1  # its first attempt died with its worker; the sweeper queued it again
    analyze_batch(context, jobs[0])
    assert context.passes == [2]
    assert states(session_factory, jobs) == [JobState.COMPLETED, JobState.QUEUED, JobState.COMPLETED, JobState.QUEUED]
    assert [o.state for o in analyze_batch(context, jobs[1])] == [JobState.COMPLETED]
    assert context.passes == [2, 1], "the retry took no companion"
    assert states(session_factory, jobs)[3] is JobState.QUEUED
