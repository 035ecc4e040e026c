"""Study completion: a study whose completion time has come becomes one job, eligible or recorded as not.

Completion state lives in the database (``Study.completion_due_at``), so a restarted SCP loses no pending study.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy.exc import SQLAlchemyError

from config.settings import RulesSettings
from db import jobs, studies
from db.engine import SessionFactory
from db.errors import describe_database_error
from db.models import JobState, utcnow
from dicom_node.rules import Verdict, evaluate

logger = logging.getLogger(__name__)

Enqueue = Callable[[int], None]


class CompletionMonitor:
    def __init__(
        self,
        session_factory: SessionFactory,
        enqueue: Enqueue,
        detector: str,
        poll_seconds: float,
        rules: RulesSettings | None = None,
        queue_lease_s: float = 300.0,
    ) -> None:
        self._session_factory = session_factory
        self._enqueue = enqueue
        self._detector = detector
        self._poll_seconds = poll_seconds
        self._rules = rules or RulesSettings()
        self._queue_lease = timedelta(seconds=queue_lease_s)
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._next_due: datetime | None = None
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def wake_at(self, due: datetime) -> None:
        """An association's release scheduled its studies' completion at ``due``: the pass runs then, not at the next
        poll (with no debounce, at once). The poll stays for what no event announces: the stability fallback, and
        completions another SCP process scheduled."""
        with self._lock:
            if self._next_due is None or due < self._next_due:
                self._next_due = due
        self._wake.set()

    def _wait_s(self) -> float:
        with self._lock:
            due = self._next_due
        if due is None:
            return self._poll_seconds
        return max(0.0, min(self._poll_seconds, (due - utcnow()).total_seconds()))

    def _take_due(self) -> None:
        with self._lock:
            if self._next_due is not None and self._next_due <= utcnow():
                self._next_due = None

    def run_once(self) -> list[int]:
        """Turn every due study into a job; returns the ids of the jobs created."""
        created: list[tuple[int, JobState]] = []
        with self._session_factory.begin() as session:
            for study_id in studies.claim_due_studies(session, utcnow()):
                decision = evaluate(studies.study_facts(session, study_id), self._rules)
                # A chest study the detector must not analyse still goes to a worker, which writes the SR saying so; one
                # whose images the PACS rejected goes too, and the worker withdraws the results made from them.
                state = JobState.NOT_ELIGIBLE if decision.verdict is Verdict.NOT_APPLICABLE else JobState.QUEUED
                lease = utcnow() + self._queue_lease  # if the message is lost, the sweeper sends it again
                job_id = jobs.create_job(session, study_id, self._detector, state, decision.reason, lease)
                created.append((job_id, state))
        for job_id, state in created:
            if state is JobState.QUEUED:
                self._enqueue_safely(job_id)
            else:
                logger.info("job %d not eligible", job_id)
        return [job_id for job_id, _ in created]

    def _enqueue_safely(self, job_id: int) -> None:
        try:
            self._enqueue(job_id)
            logger.info("job %d queued for analysis", job_id)
        except Exception as exc:  # broker down: the row stays QUEUED for the sweeper to re-send
            logger.error("job %d recorded but not enqueued: %s", job_id, type(exc).__name__)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self._wait_s())
            self._wake.clear()
            if self._stop.is_set():
                return
            self._take_due()
            try:
                self.run_once()
            except SQLAlchemyError as exc:
                logger.error("completion pass failed, retrying: %s", describe_database_error(exc))

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="study-completion", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
