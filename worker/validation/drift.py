"""The drift watch: per label and per equipment model, the last week's positive rate and mean score against the
validation period of the running model.

The running model is the one of the most recent analysis (name, version and weights): a new version or new weights
start a new period, compared only with themselves. Its validation period is the set of its studies with the site's
truth (``cxr validate import``); without truth, its first ``drift.baseline_days``. The dashboard's Model page shows
the table and ``/metrics`` exports ``cxr_drift`` (1 where a label drifted on a device).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from config.settings import DriftSettings
from db.models import utcnow
from db.validation import (
    LabelRate,
    ModelIdentity,
    first_jobs,
    label_rates,
    latest_model,
    recent_jobs,
    validated_jobs,
)


class Verdict(StrEnum):
    DRIFT = "drift"
    STEADY = "steady"
    TOO_FEW = "too few images"


@dataclass(frozen=True)
class DriftRow:
    label: str
    equipment: str
    validation: LabelRate | None
    recent: LabelRate | None
    verdict: Verdict

    @property
    def rate_change(self) -> float | None:
        if self.validation is None or self.recent is None:
            return None
        return self.recent.positive_rate - self.validation.positive_rate

    @property
    def score_change(self) -> float | None:
        if self.validation is None or self.recent is None:
            return None
        return self.recent.mean_score - self.validation.mean_score


@dataclass(frozen=True)
class DriftWatch:
    model: ModelIdentity | None
    validation_period: str
    """How the validation period was chosen: the site's truth, or the model's first days."""
    since: datetime
    rows: tuple[DriftRow, ...]

    @property
    def drifted(self) -> tuple[DriftRow, ...]:
        return tuple(row for row in self.rows if row.verdict is Verdict.DRIFT)


def _verdict(validation: LabelRate | None, recent: LabelRate | None, settings: DriftSettings) -> Verdict:
    if validation is None or recent is None or min(validation.images, recent.images) < settings.min_images:
        return Verdict.TOO_FEW
    moved = abs(recent.positive_rate - validation.positive_rate) > settings.max_rate_change or (
        abs(recent.mean_score - validation.mean_score) > settings.max_score_change
    )
    return Verdict.DRIFT if moved else Verdict.STEADY


def drift_watch(session: Session, settings: DriftSettings, now: datetime | None = None) -> DriftWatch:
    since = (now or utcnow()) - timedelta(days=settings.window_days)
    model = latest_model(session)
    if model is None:
        return DriftWatch(None, "no analysis yet", since, ())
    validated = validated_jobs(model)
    if session.scalar(select(func.count()).select_from(validated.subquery())):
        period, chosen = "the studies with the site's truth", validated
    else:
        period, chosen = (
            f"the model's first {settings.baseline_days:g} days",
            first_jobs(session, model, settings.baseline_days),
        )
    validation = {(r.label, r.equipment): r for r in label_rates(session, chosen)}
    recent = {(r.label, r.equipment): r for r in label_rates(session, recent_jobs(model, since))}
    rows = tuple(
        DriftRow(
            label,
            equipment,
            validation.get(key),
            recent.get(key),
            _verdict(validation.get(key), recent.get(key), settings),
        )
        for key in sorted(set(validation) | set(recent))
        for label, equipment in [key]
    )
    return DriftWatch(model, period, since, rows)


def thresholds_warning(thresholds_for: str | None, has_thresholds: bool, running_model_id: str) -> str | None:
    """Said on the Model page when the site's thresholds were calibrated for another model than the running one."""
    if not has_thresholds or thresholds_for is None or thresholds_for == running_model_id:
        return None
    return f"the site's thresholds were set for {thresholds_for}; the running model is {running_model_id}: recalibrate"
