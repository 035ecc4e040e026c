"""Pipeline stages driven without Celery: a recorded job, a worker context, settings with a PACS destination."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pydicom
import pytest

from config.outputs import Destination
from config.settings import Settings, WorkerSettings
from db import deliveries, jobs, results, studies
from db.engine import SessionFactory
from db.models import JobState, ResultKind, utcnow
from db.results import ResultRecord
from db.studies import InstanceFacts
from worker.announce import Announcer
from worker.celery_app import create_celery_app
from worker.context import WorkerContext
from worker.deliver import DeliveryOutcome
from worker.queue import TaskQueue


def record(
    session_factory: SessionFactory,
    settings: Settings,
    source: Path | Sequence[Path],
    detector: str = "baseline",
    calling_ae: str = "PACS",
) -> int:
    """A job for the study of ``source`` (one file, or several of one study), its images spooled and recorded."""
    with session_factory.begin() as s:
        for path in [source] if isinstance(source, Path) else source:
            recorded = studies.record_instance(
                s, _spooled(settings, path, calling_ae), utcnow() + timedelta(seconds=60)
            )
        return jobs.create_job(s, recorded.study_id, detector, JobState.QUEUED)


def _spooled(settings: Settings, source: Path, calling_ae: str) -> InstanceFacts:
    ds = pydicom.dcmread(source, stop_before_pixels=True)
    spooled = settings.spool_dir / ds.StudyInstanceUID / f"{ds.SOPInstanceUID}.dcm"
    spooled.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(source, spooled)
    return InstanceFacts(
        ds.StudyInstanceUID,
        ds.SeriesInstanceUID,
        ds.SOPInstanceUID,
        ds.SOPClassUID,
        "1.2.840.10008.1.2.1",
        ds.Modality,
        ds.get("BodyPartExamined"),
        ds.get("ViewPosition"),
        ds.get("StudyDescription"),
        calling_ae,
        spooled,
    )


def with_pacs(tmp_path: Path, port: int, **overrides: object) -> Settings:
    destination = Destination(name="pacs", ae_title="PACS", host="127.0.0.1", port=port)
    return Settings(data_dir=tmp_path / "var", destinations=[destination], **overrides)  # type: ignore[arg-type]


def context_for(settings: Settings, session_factory: SessionFactory) -> WorkerContext:
    return WorkerContext(
        settings=settings, session_factory=session_factory, queue=TaskQueue(create_celery_app(settings))
    )


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


SETTINGS = WorkerSettings(max_attempts=2, queue_lease_s=60, analysis_lease_s=60, delivery_lease_s=600)


def queued_job(session_factory: SessionFactory, lease_in_s: float) -> int:
    with session_factory.begin() as s:
        study_id = studies.record_instance(s, facts("1.2.3.4"), utcnow() + timedelta(hours=1)).study_id
        return jobs.create_job(s, study_id, "baseline", JobState.QUEUED, None, utcnow() + timedelta(seconds=lease_in_s))


def encoded_job_with_deliveries(
    session_factory: SessionFactory, count: int, destinations: tuple[str, ...] = ("pacs",), study: str = "1.2.3"
) -> tuple[int, list[int], list[str]]:
    """An ENCODED job with ``count`` SC result objects, each with a PENDING delivery to every destination:
    (job id, delivery ids, SOP Instance UIDs)."""
    with session_factory.begin() as s:
        study_id = studies.record_instance(s, facts(f"{study}.4", study), utcnow()).study_id
        job_id = jobs.create_job(s, study_id, "baseline", JobState.QUEUED)
        jobs.transition_job(s, job_id, JobState.ANALYZING)
        jobs.transition_job(s, job_id, JobState.ENCODED)
        uids = [f"{study}.5.{i + 10}" for i in range(count)]
        result_ids = [
            results.upsert_result_object(
                s,
                job_id,
                ResultRecord(ResultKind.SC, "1.2.840.10008.5.1.4.1.1.7", uid, f"{study}.9", Path(f"/r/{uid}.dcm")),
            )
            for uid in uids
        ]
        delivery_ids = deliveries.ensure_deliveries(s, result_ids, list(destinations))
    return job_id, delivery_ids, uids


def analyse_and_deliver(context: WorkerContext, job_id: int) -> JobState:
    """Analyse the job, deliver each of its deliveries at once (each must be SENT), and return the job's state."""
    from worker.analyze import analyze_job
    from worker.deliver import DeliveryOutcome, deliver_result

    outcome = analyze_job(context, job_id)
    for delivery_id in outcome.delivery_ids:
        assert deliver_result(context, delivery_id) is DeliveryOutcome.SENT
    with context.session_factory() as s:
        return jobs.job_state(s, job_id)


def retry_when_due(context: WorkerContext, delivery_id: int) -> object:
    """What the delivery's retry message does once its backoff has passed (the tests do not wait it out)."""
    from worker.deliver import deliver_result

    with context.session_factory.begin() as s:
        deliveries.due_now(s, [delivery_id])
    return deliver_result(context, delivery_id)


@contextmanager
def delivering(context: WorkerContext) -> Iterator[tuple[Announcer, list[DeliveryOutcome]]]:
    """An announcer (what the analysis task uses) whose messages a delivery worker takes at once, each conversation
    in a thread of its own; the conversations' outcomes, complete once the block has ended (each must end)."""
    from worker.deliver import deliver_conversation

    outcomes: list[DeliveryOutcome] = []
    threads: list[threading.Thread] = []

    def send(delivery_id: int) -> None:
        thread = threading.Thread(target=lambda: outcomes.append(deliver_conversation(context, delivery_id)))
        threads.append(thread)
        thread.start()

    yield Announcer(context.session_factory, send), outcomes
    for thread in threads:
        thread.join(60)
        assert not thread.is_alive(), "the conversation ended"


def before_the_sr(monkeypatch: pytest.MonkeyPatch, action: Callable[[], None]) -> None:
    """Run ``action`` when the analysis is about to build the SR: after every image's objects were recorded."""
    from worker import analyze

    build = analyze.encode_report

    def first_the_action(*args: Any) -> Any:
        action()
        return build(*args)

    monkeypatch.setattr(analyze, "encode_report", first_the_action)
