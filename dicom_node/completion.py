"""Study completion: a study whose completion time has come becomes one job, eligible or recorded as not.

Completion state lives in the database (``Study.completion_due_at``), so a restarted SCP loses no pending study.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import timedelta

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
        self._thread: threading.Thread | None = None

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
        while not self._stop.wait(self._poll_seconds):
            try:
                self.run_once()
            except SQLAlchemyError as exc:
                logger.error("completion pass failed, retrying: %s", describe_database_error(exc))

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="study-completion", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
