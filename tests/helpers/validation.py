"""Analysed studies written straight into the database for the site-validation tests: equipment, view, scores."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from db import jobs, results, studies
from db.models import Job, JobState, utcnow
from db.results import ScoreRecord
from tests.helpers.encode_cases import derived_uid
from tests.helpers.pipeline import facts as instance_facts


@dataclass
class Seeded:
    """One analysed study: its scores, what was reported, and the test's own truth for it."""

    study_uid: str
    scores: dict[str, float]
    positive: dict[str, bool]
    truth: dict[str, str] = field(default_factory=dict)


def seed_study(
    session: Session,
    tag: str,
    scores: dict[str, float],
    *,
    equipment: tuple[str, str] = ("Acme", "X1"),
    view: str = "PA",
    finished_at: datetime | None = None,
    version: str = "0.1.0",
    weights_sha256: str | None = None,
    shadow: bool = True,
    threshold: float = 0.5,
) -> Seeded:
    study_uid = derived_uid("validation-study", tag)
    facts = replace(
        instance_facts(derived_uid("validation-instance", tag), study_uid),
        series_instance_uid=derived_uid("validation-series", tag),
        view_position=view,
        manufacturer=equipment[0],
        manufacturer_model_name=equipment[1],
    )
    study_id = studies.record_instance(session, facts, utcnow() + timedelta(hours=1)).study_id
    job_id = jobs.create_job(session, study_id, "baseline", JobState.QUEUED)
    job = session.get_one(Job, job_id)
    # Test set-up: the job is put straight into the state an analysis would leave it in.
    job.state, job.finished_at, job.shadow = JobState.COMPLETED, finished_at or utcnow(), shadow
    job.detector_version, job.weights_sha256 = version, weights_sha256
    instance_id = session.get_one(Job, job_id).study.instances[0].id
    positive = {label: score >= threshold for label, score in scores.items()}
    records = [ScoreRecord(instance_id, label, score, positive[label]) for label, score in scores.items()]
    results.replace_scores(session, job_id, records)
    session.flush()
    return Seeded(study_uid, scores, positive)
