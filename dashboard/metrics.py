"""/metrics: Prometheus exposition built from the database at scrape time.

The SCP, the workers and the dashboard are separate processes, possibly on several hosts. Counting in each process
would need prometheus-client's multiprocess mode on one host only; reading the system of record instead gives one
consistent set of numbers, equal to the database's by construction, that survives restarts. No label carries PHI:
the only labels are job states, delivery states, queue names, association outcomes, urgencies, and the drift
watch's finding labels and equipment makes and models.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from config.settings import DriftSettings
from dashboard import metrics_queries
from db.engine import SessionFactory
from db.models import DeliveryState, JobState, Urgency
from worker.validation.drift import Verdict, drift_watch

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _histogram(name: str, documentation: str, histogram: metrics_queries.Histogram) -> HistogramMetricFamily:
    buckets = [
        (f"{bound:g}", float(count)) for bound, count in zip(histogram.bounds, histogram.cumulative, strict=True)
    ]
    buckets.append(("+Inf", float(histogram.count)))
    return HistogramMetricFamily(name, documentation, buckets=buckets, sum_value=histogram.total)


class NodeCollector(Collector):
    def __init__(
        self,
        session_factory: SessionFactory,
        depths: Callable[[], dict[str, int | None]],
        drift: DriftSettings | None = None,
    ) -> None:
        self._session_factory = session_factory
        self._depths = depths
        self._drift = drift

    def collect(self) -> Iterator[Metric]:
        with self._session_factory() as session:
            snapshot = metrics_queries.metrics_snapshot(session)
        yield CounterMetricFamily(
            "cxr_instances_received", "DICOM instances received and recorded.", value=snapshot.instances_received
        )
        associations = CounterMetricFamily("cxr_associations", "DICOM associations by outcome.", labels=["outcome"])
        for outcome, count in sorted(snapshot.associations.items()):
            associations.add_metric([outcome], count)
        yield associations
        jobs = GaugeMetricFamily("cxr_jobs", "Jobs by state.", labels=["state"])
        for state in JobState:
            jobs.add_metric([state.value], snapshot.jobs_by_state.get(state, 0))
        yield jobs
        depth = GaugeMetricFamily("cxr_queue_depth", "Messages waiting in each broker queue.", labels=["queue"])
        for queue, value in sorted(self._depths().items()):
            if value is not None:
                depth.add_metric([queue], value)
        yield depth
        yield _histogram(
            "cxr_analysis_seconds", "Wall time of analysis (decode, detect, encode, write).", snapshot.analysis_seconds
        )
        yield _histogram(
            "cxr_end_to_end_seconds",
            "From a study's last instance received to its job's end.",
            snapshot.end_to_end_seconds,
        )
        yield CounterMetricFamily(
            "cxr_delivery_attempts", "C-STORE attempts of result objects.", value=snapshot.delivery_attempts
        )
        yield CounterMetricFamily(
            "cxr_delivery_failures", "C-STORE attempts that failed.", value=snapshot.delivery_failures
        )
        deliveries = GaugeMetricFamily("cxr_deliveries", "Deliveries by state.", labels=["state"])
        for delivery_state in DeliveryState:
            deliveries.add_metric([delivery_state.value], snapshot.deliveries_by_state.get(delivery_state, 0))
        yield deliveries
        dead = GaugeMetricFamily("cxr_dead_letters", "Dead-lettered jobs and deliveries.", labels=["kind"])
        dead.add_metric(["job"], snapshot.dead_letter_jobs)
        dead.add_metric(["delivery"], snapshot.dead_letter_deliveries)
        yield dead
        yield from _critical_results(snapshot)
        if self._drift is not None:
            yield from self._drift_gauges(self._drift)

    def _drift_gauges(self, settings: DriftSettings) -> Iterator[Metric]:
        """The drift watch per label and device (equipment make and model: not patient data); a pair with too few
        images for a verdict has no sample."""
        with self._session_factory() as session:
            watch = drift_watch(session, settings)
        flag = GaugeMetricFamily(
            "cxr_drift",
            "1 where a label's weekly positive rate or mean score left its bound.",
            labels=["label", "equipment"],
        )
        rate = GaugeMetricFamily(
            "cxr_drift_positive_rate_change",
            "The last week's positive rate less the validation period's.",
            labels=["label", "equipment"],
        )
        score = GaugeMetricFamily(
            "cxr_drift_mean_score_change",
            "The last week's mean score less the validation period's.",
            labels=["label", "equipment"],
        )
        for row in watch.rows:
            if row.verdict is Verdict.TOO_FEW or row.rate_change is None or row.score_change is None:
                continue
            flag.add_metric([row.label, row.equipment], float(row.verdict is Verdict.DRIFT))
            rate.add_metric([row.label, row.equipment], row.rate_change)
            score.add_metric([row.label, row.equipment], row.score_change)
        yield from (flag, rate, score)


def _critical_results(snapshot: metrics_queries.MetricsSnapshot) -> Iterator[Metric]:
    """Analysed studies by urgency, critical ones awaiting acknowledgement, and how long acknowledgement took."""
    results = CounterMetricFamily("cxr_results", "Analysed studies by urgency.", labels=["urgency"])
    for urgency in Urgency:
        results.add_metric([urgency.value], snapshot.results_by_urgency.get(urgency, 0))
    yield results
    yield GaugeMetricFamily(
        "cxr_critical_unacknowledged", "Critical results not yet acknowledged.", value=snapshot.unacknowledged_critical
    )
    yield GaugeMetricFamily(
        "cxr_shadow_results", "Results made in shadow mode and withheld (not released).", value=snapshot.shadow_results
    )
    yield CounterMetricFamily(
        "cxr_superseded_results", "SRs a later result of the same study superseded.", value=snapshot.superseded_results
    )
    yield _histogram(
        "cxr_acknowledgement_seconds",
        "From a critical study's last instance received to an operator's acknowledgement.",
        snapshot.acknowledgement_seconds,
    )


def exposition(collector: NodeCollector) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return generate_latest(registry)
