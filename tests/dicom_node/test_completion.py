"""dicom_node.completion: a study made due by an association's release becomes a job when it is due, woken by the
release, not at the monitor's next poll; without a wake, the poll still finds it (the stability fallback's path)."""

from __future__ import annotations

import time
from datetime import timedelta

from db import studies
from db.engine import SessionFactory
from db.models import Job, utcnow
from dicom_node.completion import CompletionMonitor
from tests.helpers.pipeline import facts

LONG_POLL_S = 30.0


def study_due_in(session_factory: SessionFactory, seconds: float, sop: str) -> int:
    with session_factory.begin() as session:
        study_id = studies.record_instance(
            session, facts(sop, study=sop + ".9"), utcnow() + timedelta(hours=1)
        ).study_id
        studies.schedule_completion(session, [study_id], utcnow() + timedelta(seconds=seconds))
    return study_id


def job_appears(session_factory: SessionFactory, study_id: int, within_s: float) -> float | None:
    """Seconds until the study's job exists, or None if it did not within ``within_s``."""
    started = time.monotonic()
    while time.monotonic() - started < within_s:
        with session_factory() as session:
            if session.query(Job).filter(Job.study_id == study_id).count():
                return time.monotonic() - started
        time.sleep(0.02)
    return None


def test_a_release_wakes_completion_when_the_study_is_due_not_at_the_next_poll(session_factory: SessionFactory) -> None:
    enqueued: list[int] = []
    monitor = CompletionMonitor(session_factory, enqueued.append, "baseline", LONG_POLL_S)
    monitor.start()
    try:
        now_due = study_due_in(session_factory, 0.0, "1.2.7.1")
        monitor.wake_at(utcnow())
        at_once = job_appears(session_factory, now_due, 5.0)
        assert at_once is not None and at_once < 2.0, at_once
        later_due = study_due_in(session_factory, 1.0, "1.2.7.2")
        monitor.wake_at(utcnow() + timedelta(seconds=1.0))
        debounced = job_appears(session_factory, later_due, 5.0)
        assert debounced is not None and 0.5 < debounced < 3.0, debounced
        unannounced = study_due_in(session_factory, 0.0, "1.2.7.3")
        assert job_appears(session_factory, unannounced, 1.0) is None, "nothing wakes it before the 30 s poll"
    finally:
        monitor.stop()
    assert len(enqueued) == 2


def test_without_a_wake_the_poll_completes_the_study(session_factory: SessionFactory) -> None:
    monitor = CompletionMonitor(session_factory, lambda job_id: None, "baseline", 0.2)
    monitor.start()
    try:
        study_id = study_due_in(session_factory, 0.0, "1.2.7.4")
        assert job_appears(session_factory, study_id, 5.0) is not None
    finally:
        monitor.stop()
