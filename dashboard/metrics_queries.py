"""Repository functions for /metrics: counts and histograms over the system of record, at scrape time."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import case, func, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from db.deliveries import deliveries_by_state
from db.jobs import job_counts_by_state, withheld_results
from db.models import (
    AuditEvent,
    AuditKind,
    Delivery,
    DeliveryState,
    Instance,
    Job,
    JobState,
    ResultObject,
    Study,
    Urgency,
)
from db.urgency import acknowledgement_seconds, critical_results, jobs_by_urgency


@dataclass(frozen=True)
class Histogram:
    """Cumulative bucket counts (Prometheus semantics: each bound counts values ≤ it), their sum and count."""

    bounds: tuple[float, ...]
    cumulative: tuple[int, ...]
    total: float
    count: int


ACKNOWLEDGEMENT_BUCKETS = (60.0, 300.0, 900.0, 1800.0, 3600.0, 7200.0, 14400.0)


def values_histogram(values: Sequence[float], bounds: Sequence[float]) -> Histogram:
    return Histogram(tuple(bounds), tuple(sum(v <= b for v in values) for b in bounds), float(sum(values)), len(values))


@dataclass(frozen=True)
class MetricsSnapshot:
    instances_received: int
    associations: dict[str, int]
    jobs_by_state: dict[JobState, int]
    analysis_seconds: Histogram
    end_to_end_seconds: Histogram
    delivery_attempts: int
    delivery_failures: int
    dead_letter_jobs: int
    dead_letter_deliveries: int
    deliveries_by_state: dict[DeliveryState, int] = field(default_factory=dict)
    results_by_urgency: dict[Urgency, int] = field(default_factory=dict)
    unacknowledged_critical: int = 0
    superseded_results: int = 0
    shadow_results: int = 0
    acknowledgement_seconds: Histogram = field(default_factory=lambda: values_histogram([], ACKNOWLEDGEMENT_BUCKETS))


ANALYSIS_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
END_TO_END_BUCKETS = (1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0)


def _histogram(session: Session, column: InstrumentedAttribute[float | None], bounds: Sequence[float]) -> Histogram:
    """One query: the count, the sum and the cumulative count at each bound, over the rows where it was measured."""
    counts = session.execute(
        select(
            func.count(),
            func.coalesce(func.sum(column), 0.0),
            *(func.coalesce(func.sum(case((column <= b, 1), else_=0)), 0) for b in bounds),
        ).where(column.is_not(None))
    ).one()
    return Histogram(tuple(bounds), tuple(int(c) for c in counts[2:]), float(counts[1]), int(counts[0]))


def metrics_snapshot(session: Session) -> MetricsSnapshot:
    rows = session.execute(
        select(AuditEvent.kind, func.count())
        .where(AuditEvent.kind.in_([AuditKind.ASSOCIATION_ACCEPTED, AuditKind.ASSOCIATION_REJECTED]))
        .group_by(AuditEvent.kind)
    )
    audit = dict(rows.all())
    by_state = deliveries_by_state(session)
    attempts = int(session.scalar(select(func.coalesce(func.sum(Delivery.attempts), 0))) or 0)
    # Every attempt that did not end in the (single) successful store of its delivery failed.
    succeeded = by_state.get(DeliveryState.SENT, 0) + by_state.get(DeliveryState.COMMIT_PENDING, 0)
    jobs = job_counts_by_state(session)
    return MetricsSnapshot(
        instances_received=int(session.scalar(select(func.count()).select_from(Instance)) or 0),
        associations={
            "accepted": audit.get(AuditKind.ASSOCIATION_ACCEPTED, 0),
            "rejected": audit.get(AuditKind.ASSOCIATION_REJECTED, 0),
        },
        jobs_by_state=jobs,
        analysis_seconds=_histogram(session, Job.analysis_seconds, ANALYSIS_BUCKETS),
        end_to_end_seconds=_histogram(session, Job.end_to_end_seconds, END_TO_END_BUCKETS),
        delivery_attempts=attempts,
        delivery_failures=max(0, attempts - succeeded),
        dead_letter_jobs=jobs.get(JobState.DEAD_LETTER, 0),
        dead_letter_deliveries=by_state.get(DeliveryState.DEAD_LETTER, 0),
        deliveries_by_state=by_state,
        results_by_urgency=jobs_by_urgency(session),
        unacknowledged_critical=len(critical_results(session, unacknowledged_only=True)),
        superseded_results=int(
            session.scalar(
                select(func.count()).select_from(ResultObject).where(ResultObject.superseded_at.is_not(None))
            )
            or 0
        ),
        shadow_results=withheld_results(session),
        acknowledgement_seconds=values_histogram(acknowledgement_seconds(session), ACKNOWLEDGEMENT_BUCKETS),
    )


def study_receipt_times(session: Session) -> dict[str, datetime]:
    """Study Instance UID → when its last instance was committed: where end-to-end latency starts."""
    rows = session.execute(select(Study.study_instance_uid, Study.last_received_at)).all()
    return dict(rows)
