"""What each page and API response shows, composed from the database and the cached slow facts.

Pages render these dataclasses and the API returns them as JSON, so both always show the same thing. Studies are
named by row id and the keyed UID digest that the logs use; never by a patient attribute.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from config.privacy import uid_digest
from dashboard import queries
from dashboard.charts import BarChart, bar_chart
from dashboard.destination_health import DestinationHealth
from dashboard.render import span
from dashboard.search import JobFilter
from dashboard.services import DashboardServices
from dashboard.site_status import ListenerStatus, StorageStatus, listener_status
from db import destinations, heartbeats
from db.heartbeats import WorkerRecord
from db.jobs import withheld_results
from db.models import JobState, utcnow
from db.results import job_findings
from db.studies import InstanceHeader
from db.urgency import acknowledgement_seconds, critical_results
from models.urgency import is_critical
from worker.heartbeat import ONLINE_WITHIN_S


@dataclass(frozen=True)
class OverviewState:
    generated_at: datetime
    queue_depths: dict[str, int | None]
    in_flight: int
    jobs_by_state: dict[str, int]
    pending_deliveries: int
    dead_letter_jobs: int
    dead_letter_deliveries: int
    oldest_waiting_job: int | None
    oldest_waiting_seconds: float | None
    recent_failures: list[queries.JobRow]
    last_hour: queries.WindowStats
    last_day: queries.WindowStats
    workers: list[WorkerRecord]
    destinations: list[DestinationHealth]
    critical: list[CriticalRow]
    """Unacknowledged critical results, the longest-waiting first: they stand at the top of the overview."""
    shadow_results: int
    """Results made in shadow mode and withheld (not released)."""
    acknowledgement: AcknowledgementHistogram
    listener: ListenerStatus | None = None
    storage: StorageStatus | None = None


@dataclass(frozen=True)
class CriticalRow:
    job_id: int
    study_id: int
    waiting_seconds: float
    """Since the study's last instance was received."""
    overdue: bool
    """Past ``urgency.acknowledge_within_s``: shown red, and the webhooks are told again."""
    labels: list[str]
    """The findings that made it critical, under the thresholds now configured."""


@dataclass(frozen=True)
class AcknowledgementHistogram:
    """Time from receipt to acknowledgement of critical results: counts per bucket, the last one open-ended."""

    bounds_minutes: tuple[int, ...]
    counts: tuple[int, ...]
    total: int


ACKNOWLEDGEMENT_BOUNDS_MINUTES = (5, 15, 30, 60, 120, 240)


def acknowledgement_histogram(seconds: list[float]) -> AcknowledgementHistogram:
    counts = [0] * (len(ACKNOWLEDGEMENT_BOUNDS_MINUTES) + 1)
    for value in seconds:
        index = next((i for i, b in enumerate(ACKNOWLEDGEMENT_BOUNDS_MINUTES) if value <= b * 60), -1)
        counts[index] += 1
    return AcknowledgementHistogram(ACKNOWLEDGEMENT_BOUNDS_MINUTES, tuple(counts), len(seconds))


def critical_rows(services: DashboardServices, now: datetime) -> list[CriticalRow]:
    limit = services.settings.urgency.acknowledge_within_s
    thresholds = services.settings.urgency.critical_thresholds
    rows = []
    with services.session_factory() as session:
        for c in critical_results(session, unacknowledged_only=True):
            found = job_findings(session, c.job_id)
            labels = list(dict.fromkeys(f.label for f in found if is_critical(f.label, f.probability, thresholds)))
            waited = (now - c.received_at).total_seconds()
            rows.append(CriticalRow(c.job_id, c.study_id, waited, waited > limit, labels))
    return rows


@dataclass(frozen=True)
class StudyState:
    study_id: int
    study_digest: str
    stat: bool
    study_description: str | None
    first_received_at: datetime
    last_received_at: datetime
    instances: list[InstanceHeader]
    jobs: list[queries.JobDetail]


def overview_state(services: DashboardServices) -> OverviewState:
    now = utcnow()
    with services.session_factory() as session:
        data = queries.overview(session, now)
        workers = heartbeats.online_workers(session, now - timedelta(seconds=ONLINE_WITHIN_S))
        paused = destinations.paused_destinations(session)
        acknowledged = acknowledgement_seconds(session)
        shadow = withheld_results(session)
        listener = listener_status(session, services.settings)
    by_state = {state.value: data.queue.jobs_by_state.get(state, 0) for state in JobState}
    return OverviewState(
        generated_at=now,
        queue_depths=services.depths.get(),
        in_flight=by_state[JobState.ANALYZING.value],
        jobs_by_state=by_state,
        pending_deliveries=data.queue.pending_deliveries,
        dead_letter_jobs=by_state[JobState.DEAD_LETTER.value],
        dead_letter_deliveries=data.queue.dead_letter_deliveries,
        oldest_waiting_job=data.queue.oldest_waiting_job,
        oldest_waiting_seconds=(now - data.queue.oldest_waiting_since).total_seconds()
        if data.queue.oldest_waiting_since
        else None,
        recent_failures=list(data.recent_failures),
        last_hour=data.hour,
        last_day=data.day,
        workers=workers,
        destinations=[replace(h, paused=h.name in paused) for h in services.destinations.snapshot()],
        critical=critical_rows(services, now),
        shadow_results=shadow,
        acknowledgement=acknowledgement_histogram(acknowledged),
        listener=listener,
        storage=services.storage.get() if services.storage else None,
    )


STATE_LEGEND = {
    JobState.QUEUED: "waiting for an analysis worker",
    JobState.ANALYZING: "an analysis worker holds it",
    JobState.ENCODED: "results made, being sent",
    JobState.DELIVERED: "every result reached its destinations",
    JobState.COMPLETED: "results kept here: no destination takes them",
    JobState.NOT_ELIGIBLE: "not a chest CR/DX: nothing to analyse",
    JobState.FAILED: "analysis failed; a 'not performed' SR says so",
    JobState.DEAD_LETTER: "retries ran out: an operator re-sends or requeues",
    JobState.CANCELLED: "an operator cancelled it before analysis",
    JobState.RETRACTED: "its results were withdrawn (rejection note sent)",
}
"""One line per state for the studies page's legend."""


def _bucket_labels(window: queries.WindowStats) -> tuple[list[str], str]:
    """Each bucket named by how long ago it began, in the window's natural unit."""
    count = len(window.buckets)
    hours = window.bucket_span >= timedelta(hours=1)
    step = window.bucket_span.total_seconds() / (3600 if hours else 60)
    return [f"{(count - i) * step:g}" for i in range(count)], "hours ago" if hours else "minutes ago"


def overview_charts(o: OverviewState) -> dict[str, BarChart]:
    """Throughput and latency over the last hour and day, and time to acknowledge: each with axes and units."""
    charts: dict[str, BarChart] = {}
    for key, window in (("hour", o.last_hour), ("day", o.last_day)):
        labels, ago = _bucket_labels(window)
        per = span(window.bucket_span)
        every = max(1, len(labels) // 6)
        charts[f"throughput-{key}"] = bar_chart(
            f"studies finished per {per}, last {span(window.span)}", window.buckets, labels,
            f"studies / {per}", ago, "studies", every,
        )  # fmt: skip
        charts[f"latency-{key}"] = bar_chart(
            f"median time from last image received to result delivered, per {per}", window.bucket_p50_seconds,
            labels, "seconds", ago, "s", every,
        )  # fmt: skip
    a = o.acknowledgement
    bounds = [f"≤{b}" for b in a.bounds_minutes] + [f">{a.bounds_minutes[-1]}"]
    charts["acknowledgement"] = bar_chart(
        "critical results by time from receipt to acknowledgement", a.counts, bounds, "results", "minutes", "results"
    )
    return charts


def study_state(services: DashboardServices, study_id: int) -> StudyState:
    with services.session_factory() as session:
        detail = queries.study_detail(session, study_id)
    return StudyState(
        study_id=detail.study_id,
        study_digest=uid_digest(detail.study_instance_uid),
        stat=detail.stat,
        study_description=detail.study_description,
        first_received_at=detail.first_received_at,
        last_received_at=detail.last_received_at,
        instances=list(detail.instances),
        jobs=list(detail.jobs),
    )


def job_page(services: DashboardServices, page: int, search: JobFilter, per_page: int = 50) -> queries.JobPage:
    with services.session_factory() as session:
        return queries.job_page(session, page, per_page, search, services.node.digest_key)
