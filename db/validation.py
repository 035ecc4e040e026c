"""Site validation: the radiologists' truth, each analysed study's scores beside it, and the aggregates the drift
watch compares. Nothing here names a patient: studies are matched by Study Instance UID, equipment by its make and
model."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, case, delete, func, select
from sqlalchemy.orm import Session

from db.enums import ResultMode
from db.models import Instance, Job, JobState, LabelScore, Study, TruthLabel, TruthValue, utcnow


@dataclass(frozen=True)
class TruthRow:
    study_instance_uid: str
    reader: str
    values: dict[str, TruthValue]
    """Label → the reader's value; labels the reader did not read are absent."""


@dataclass(frozen=True)
class ModelIdentity:
    detector: str
    version: str | None
    weights_sha256: str | None

    @property
    def text(self) -> str:
        return f"{self.detector} {self.version or '?'}" + (
            f" (sha256 {self.weights_sha256[:12]})" if self.weights_sha256 else ""
        )


@dataclass
class StudyScores:
    """One analysed study: its best score and whether each label was reported, over its analysed images."""

    study_instance_uid: str
    job_id: int
    equipment: str
    view: str
    scores: dict[str, float] = field(default_factory=dict)
    positive: dict[str, bool] = field(default_factory=dict)


def equipment_name(manufacturer: str | None, model_name: str | None) -> str:
    """How reports and the drift watch name a device: "make model", "unknown" when the header said nothing."""
    return " ".join(part for part in (manufacturer, model_name) if part) or "unknown"


def replace_truth(session: Session, rows: Sequence[TruthRow]) -> int:
    """Store the readings; a reading imported again (same study, label and reader) replaces the earlier one. The
    caller's transaction makes the import all or nothing. Returns the number of readings stored."""
    now, stored = utcnow(), 0
    for row in rows:
        session.execute(
            delete(TruthLabel).where(
                TruthLabel.study_instance_uid == row.study_instance_uid,
                TruthLabel.reader == row.reader,
                TruthLabel.label.in_(list(row.values)),
            )
        )
        for label, value in row.values.items():
            session.add(
                TruthLabel(
                    study_instance_uid=row.study_instance_uid,
                    label=label,
                    value=value,
                    reader=row.reader,
                    imported_at=now,
                )
            )
            stored += 1
    session.flush()
    return stored


def _chunks(values: Iterable[Any], size: int = 500) -> Iterator[list[Any]]:
    """Short IN lists on every backend."""
    items = list(values)
    for start in range(0, len(items), size):
        yield items[start : start + size]


def known_studies(session: Session, study_uids: Iterable[str]) -> set[str]:
    found: set[str] = set()
    for chunk in _chunks(set(study_uids)):
        found.update(session.scalars(select(Study.study_instance_uid).where(Study.study_instance_uid.in_(chunk))))
    return found


def consensus_truth(session: Session, study_uids: Iterable[str]) -> dict[str, dict[str, TruthValue]]:
    """Study → label → the readers' consensus: the majority of positive and negative readings; a tie, or only
    uncertain readings, is uncertain."""
    votes: dict[tuple[str, str], list[TruthValue]] = defaultdict(list)
    for chunk in _chunks(set(study_uids)):
        for uid, label, value in session.execute(
            select(TruthLabel.study_instance_uid, TruthLabel.label, TruthLabel.value).where(
                TruthLabel.study_instance_uid.in_(chunk)
            )
        ):
            votes[(uid, label)].append(value)
    result: dict[str, dict[str, TruthValue]] = defaultdict(dict)
    for (uid, label), values in votes.items():
        positive, negative = values.count(TruthValue.POSITIVE), values.count(TruthValue.NEGATIVE)
        result[uid][label] = (
            TruthValue.POSITIVE
            if positive > negative
            else TruthValue.NEGATIVE
            if negative > positive
            else TruthValue.UNCERTAIN
        )
    return dict(result)


def _model_of(job: Job) -> ModelIdentity:
    return ModelIdentity(job.detector, job.detector_version, job.weights_sha256)


def latest_model(session: Session) -> ModelIdentity | None:
    """The model of the most recent analysis that recorded scores."""
    job = session.scalars(
        select(Job).where(Job.id.in_(select(LabelScore.job_id))).order_by(Job.finished_at.desc(), Job.id.desc())
    ).first()
    return None if job is None else _model_of(job)


def _same_model(model: ModelIdentity) -> list[ColumnElement[bool]]:
    return [
        Job.detector == model.detector,
        Job.detector_version.is_(None) if model.version is None else Job.detector_version == model.version,
        Job.weights_sha256.is_(None) if model.weights_sha256 is None else Job.weights_sha256 == model.weights_sha256,
    ]


def _period(query: Select[Any], since: datetime | None, until: datetime | None) -> Select[Any]:
    if since is not None:
        query = query.where(Job.finished_at >= since)
    if until is not None:
        query = query.where(Job.finished_at < until)
    return query


def analysed_studies(
    session: Session,
    model: ModelIdentity,
    mode: ResultMode,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[StudyScores]:
    """Each study's latest job by ``model`` with scores (withdrawn results left out), in ``mode`` and the period."""
    jobs = _period(select(func.max(Job.id)).where(Job.id.in_(model_jobs(model))), since, until)
    if mode is not ResultMode.ALL:
        jobs = jobs.where(Job.shadow.is_(mode is ResultMode.SHADOW))
    job_ids = list(session.scalars(jobs.group_by(Job.study_id)))
    studies: dict[int, StudyScores] = {}
    views: dict[int, set[str]] = defaultdict(set)
    for chunk in _chunks(job_ids):
        rows = session.execute(
            select(LabelScore, Instance, Study.study_instance_uid)
            .join(Instance, Instance.id == LabelScore.instance_id)
            .join(Study, Study.id == Instance.study_id)
            .where(LabelScore.job_id.in_(chunk))
            .order_by(LabelScore.job_id, Instance.id)
        )
        for score, instance, study_uid in rows:
            study = studies.setdefault(
                score.job_id,
                StudyScores(
                    study_uid, score.job_id, equipment_name(instance.manufacturer, instance.manufacturer_model_name), ""
                ),
            )
            views[score.job_id].add(instance.view_position or "unknown")
            study.scores[score.label] = max(score.score, study.scores.get(score.label, 0.0))
            study.positive[score.label] = study.positive.get(score.label, False) or score.positive
    for job_id, study in studies.items():
        study.view = "+".join(sorted(views[job_id]))
    return sorted(studies.values(), key=lambda s: s.job_id)


@dataclass(frozen=True)
class LabelRate:
    """One label on one equipment model over a period: images, the share reported positive, the mean score."""

    label: str
    equipment: str
    images: int
    positive_rate: float
    mean_score: float


def label_rates(session: Session, job_ids: Select[Any]) -> list[LabelRate]:
    """Aggregated in the database: the drift watch runs on every /metrics scrape."""
    query = (
        select(
            LabelScore.label,
            Instance.manufacturer,
            Instance.manufacturer_model_name,
            func.count(),
            func.avg(case((LabelScore.positive, 1.0), else_=0.0)),
            func.avg(LabelScore.score),
        )
        .join(Instance, Instance.id == LabelScore.instance_id)
        .where(LabelScore.job_id.in_(job_ids))
        .group_by(LabelScore.label, Instance.manufacturer, Instance.manufacturer_model_name)
    )
    merged: dict[tuple[str, str], list[float]] = {}
    for label, make, model_name, count, rate, mean in session.execute(query):
        key = (label, equipment_name(make, model_name))
        n, r, m = merged.get(key, [0.0, 0.0, 0.0])
        total = n + count
        merged[key] = [total, (r * n + float(rate) * count) / total, (m * n + float(mean) * count) / total]
    return [LabelRate(label, equipment, int(n), r, m) for (label, equipment), (n, r, m) in sorted(merged.items())]


def model_jobs(model: ModelIdentity) -> Select[Any]:
    """The jobs by ``model`` that recorded scores and still stand."""
    return select(Job.id).where(
        Job.id.in_(select(LabelScore.job_id)), Job.state != JobState.RETRACTED, and_(*_same_model(model))
    )


def validated_jobs(model: ModelIdentity) -> Select[Any]:
    """The jobs by ``model`` whose study has the site's truth: the validation period."""
    with_truth = select(Study.id).where(Study.study_instance_uid.in_(select(TruthLabel.study_instance_uid)))
    return model_jobs(model).where(Job.study_id.in_(with_truth))


def first_jobs(session: Session, model: ModelIdentity, days: float) -> Select[Any]:
    """The jobs by ``model`` in its first ``days``: the validation period when the site imported no truth."""
    start = session.scalar(select(func.min(Job.finished_at)).where(Job.id.in_(model_jobs(model))))
    if start is None:
        return model_jobs(model).where(Job.id < 0)
    return model_jobs(model).where(Job.finished_at < start + timedelta(days=days))


def recent_jobs(model: ModelIdentity, since: datetime) -> Select[Any]:
    return model_jobs(model).where(Job.finished_at >= since)
