"""The Model page and /api/model: the running detector, its labels and parameters, whether the site's thresholds were
set for it, and the drift watch (``worker.validation.drift``)."""

from __future__ import annotations

from dataclasses import dataclass

from dashboard.services import DashboardServices
from models.codes import code_for
from worker.validation.drift import DriftRow, drift_watch, thresholds_warning


@dataclass(frozen=True)
class LabelInfo:
    label: str
    code: str
    meaning: str


@dataclass(frozen=True)
class DriftInfo:
    label: str
    equipment: str
    verdict: str
    validation_images: int
    recent_images: int
    validation_positive_rate: float | None
    recent_positive_rate: float | None
    validation_mean_score: float | None
    recent_mean_score: float | None


@dataclass(frozen=True)
class ModelInfo:
    detector: str
    name: str
    version: str
    weights_sha256: str | None
    abnormal_threshold: float
    parameters: dict[str, str]
    labels: list[LabelInfo]
    thresholds_warning: str | None
    """Set when the site's thresholds were calibrated for another model than this one."""
    drift_period: str
    """What the last week is compared with: the studies with the site's truth, or the model's first days."""
    drift: list[DriftInfo]


def _drift_info(row: DriftRow) -> DriftInfo:
    before, now = row.validation, row.recent
    return DriftInfo(
        row.label,
        row.equipment,
        row.verdict.value,
        before.images if before else 0,
        now.images if now else 0,
        before.positive_rate if before else None,
        now.positive_rate if now else None,
        before.mean_score if before else None,
        now.mean_score if now else None,
    )


def model_info(services: DashboardServices) -> ModelInfo:
    detector = services.detector()
    p = detector.provenance
    settings = services.settings
    labels = [
        LabelInfo(label, f"{code_for(label).scheme} {code_for(label).value}", code_for(label).meaning)
        for label in detector.labels
    ]
    with services.session_factory() as session:
        watch = drift_watch(session, settings.drift)
    warning = thresholds_warning(settings.model.thresholds_for, bool(settings.model.thresholds), p.model_id)
    return ModelInfo(
        settings.detector,
        p.name,
        p.version,
        p.weights_sha256,
        detector.abnormal_threshold,
        dict(p.parameters),
        labels,
        warning,
        watch.validation_period,
        [_drift_info(row) for row in watch.rows],
    )
