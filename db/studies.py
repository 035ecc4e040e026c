"""Receive: recording instances and their studies, and study completion.

Nothing patient-identifying crosses this boundary: the facts kept are those the eligibility rules and the dashboard
need.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, fields
from datetime import datetime
from pathlib import Path

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from db.errors import NotFoundError
from db.models import Instance, Job, Study, utcnow


@dataclass(frozen=True)
class InstanceFacts:
    """What the SCP learns from one received instance's header. No patient-identifying attributes."""

    study_instance_uid: str
    series_instance_uid: str
    sop_instance_uid: str
    sop_class_uid: str
    transfer_syntax_uid: str
    modality: str | None
    body_part_examined: str | None
    view_position: str | None
    study_description: str | None
    calling_ae_title: str | None
    spool_path: Path
    patient_age_years: int | None = None
    stat: bool = False
    manufacturer: str | None = None
    manufacturer_model_name: str | None = None
    accession_digest: str | None = None
    """``config.privacy.accession_digest`` of the Accession Number; the number itself is never stored."""


@dataclass(frozen=True)
class RecordOutcome:
    study_id: int
    created: bool
    """False when the SOP instance was already recorded (a duplicate send)."""
    other_study: bool = False
    """The SOP instance is recorded under another study (``study_id`` is that study); nothing was written."""


@dataclass(frozen=True)
class InstanceLocation:
    """Where a recorded instance is: its study, and its spooled file (which retention may have removed)."""

    study_id: int
    study_instance_uid: str
    spool_path: Path


@dataclass(frozen=True)
class InstanceHeader:
    """The header facts recorded for one instance, none of them identifying: what the dashboard shows."""

    instance_id: int
    modality: str | None
    body_part_examined: str | None
    view_position: str | None
    calling_ae_title: str | None
    received_at: datetime | None = None
    purged_at: datetime | None = None
    """When retention removed the spooled file."""


@dataclass(frozen=True, kw_only=True)
class InstanceSummary(InstanceHeader):
    """An instance as the rules and the analysis read it: its header facts, its UIDs and its spooled file."""

    sop_instance_uid: str
    sop_class_uid: str
    spool_path: Path
    patient_age_years: int | None = None
    revision: int = 1
    rejected_at: datetime | None = None
    """When the PACS rejected it (IOCM): the rules and the analysis leave it out."""


@dataclass(frozen=True)
class StudyFacts:
    """What the eligibility rules look at."""

    study_id: int
    study_description: str | None
    instances: tuple[InstanceSummary, ...]


def record_instance(session: Session, facts: InstanceFacts, completion_fallback_at: datetime) -> RecordOutcome:
    """Insert the instance (and its study on first sight). A duplicate SOP instance changes nothing, and one recorded
    under another study creates no study row."""
    known = instance_location(session, facts.sop_instance_uid)
    if known is not None:
        other = known.study_instance_uid != facts.study_instance_uid
        return RecordOutcome(study_id=known.study_id, created=False, other_study=other)
    study = session.scalars(
        select(Study).where(Study.study_instance_uid == facts.study_instance_uid).with_for_update()
    ).one_or_none()
    now = utcnow()
    if study is None:
        study = Study(
            study_instance_uid=facts.study_instance_uid,
            study_description=facts.study_description,
            first_received_at=now,
            last_received_at=now,
        )
        session.add(study)
        session.flush()
    session.add(
        Instance(
            study_id=study.id,
            sop_instance_uid=facts.sop_instance_uid,
            sop_class_uid=facts.sop_class_uid,
            series_instance_uid=facts.series_instance_uid,
            transfer_syntax_uid=facts.transfer_syntax_uid,
            modality=facts.modality,
            body_part_examined=facts.body_part_examined,
            view_position=facts.view_position,
            patient_age_years=facts.patient_age_years,
            calling_ae_title=facts.calling_ae_title,
            manufacturer=facts.manufacturer,
            manufacturer_model_name=facts.manufacturer_model_name,
            spool_path=str(facts.spool_path),
            received_at=now,
        )
    )
    study.last_received_at = now
    study.completion_due_at = completion_fallback_at
    study.stat = study.stat or facts.stat
    study.accession_digest = facts.accession_digest or study.accession_digest
    session.flush()
    return RecordOutcome(study_id=study.id, created=True)


def instance_revision(session: Session, sop_instance_uid: str) -> int:
    revision = session.scalar(select(Instance.revision).where(Instance.sop_instance_uid == sop_instance_uid))
    if revision is None:
        raise NotFoundError("no instance with that SOP Instance UID is recorded")
    return revision


class RevisionConflictError(Exception):
    """Another association recorded a revision of the same instance first."""


def record_revision(session: Session, facts: InstanceFacts, revision: int, completion_fallback_at: datetime) -> int:
    """The instance re-sent with other content: its row names the new file as ``revision``, its header facts are the
    new ones, and its study is to be completed (and analysed) again. Returns the study id."""
    instance = session.scalars(
        select(Instance).where(Instance.sop_instance_uid == facts.sop_instance_uid).with_for_update()
    ).one()
    if instance.revision != revision - 1:
        raise RevisionConflictError(f"revision {revision} of the instance was recorded concurrently")
    now = utcnow()
    instance.revision = revision
    instance.spool_path = str(facts.spool_path)
    instance.transfer_syntax_uid = facts.transfer_syntax_uid
    instance.modality = facts.modality
    instance.body_part_examined = facts.body_part_examined
    instance.view_position = facts.view_position
    instance.patient_age_years = facts.patient_age_years
    instance.calling_ae_title = facts.calling_ae_title
    instance.manufacturer = facts.manufacturer
    instance.manufacturer_model_name = facts.manufacturer_model_name
    instance.received_at = now
    instance.purged_at = None
    study = instance.study
    study.last_received_at = now
    study.completion_due_at = completion_fallback_at
    study.stat = study.stat or facts.stat
    session.flush()
    return study.id


def instance_counts(session: Session, study_ids: Iterable[int]) -> dict[int, int]:
    """Study id → the instances it holds."""
    rows = session.execute(
        select(Instance.study_id, func.count())
        .where(Instance.study_id.in_(list(study_ids)))
        .group_by(Instance.study_id)
    )
    return {int(study_id): int(count) for study_id, count in rows.tuples()}


def schedule_completion(session: Session, study_ids: Iterable[int], due_at: datetime) -> None:
    """Bring forward completion of studies that still wait for it (their association was released)."""
    ids = list(study_ids)
    if not ids:
        return
    session.execute(
        update(Study)
        .where(Study.id.in_(ids), Study.completion_due_at.is_not(None), Study.completion_due_at > due_at)
        .values(completion_due_at=due_at)
    )


def claim_due_studies(session: Session, now: datetime) -> list[int]:
    """Studies whose completion time has come; clears their due time so only one caller claims each.

    One conditional UPDATE … RETURNING: a study another caller (another SCP process) claimed first no longer matches,
    on SQLite (whose writes take turns) as on PostgreSQL (which waits for the other's row lock, then looks again)."""
    claimed = session.scalars(
        update(Study)
        .where(Study.completion_due_at.is_not(None), Study.completion_due_at <= now)
        .values(completion_due_at=None)
        .returning(Study.id)
    )
    return sorted(claimed)


def instance_location(session: Session, sop_instance_uid: str) -> InstanceLocation | None:
    """Where the instance with this SOP Instance UID is recorded, if it is."""
    row = session.execute(
        select(Study.id, Study.study_instance_uid, Instance.spool_path)
        .join(Instance, Instance.study_id == Study.id)
        .where(Instance.sop_instance_uid == sop_instance_uid)
    ).first()
    return None if row is None else InstanceLocation(row[0], row[1], Path(row[2]))


def instance_header(instance: Instance) -> InstanceHeader:
    return InstanceHeader(
        instance_id=instance.id,
        modality=instance.modality,
        body_part_examined=instance.body_part_examined,
        view_position=instance.view_position,
        calling_ae_title=instance.calling_ae_title,
        received_at=instance.received_at,
        purged_at=instance.purged_at,
    )


def instance_summary(instance: Instance) -> InstanceSummary:
    header = instance_header(instance)
    return InstanceSummary(
        **{f.name: getattr(header, f.name) for f in fields(InstanceHeader)},
        sop_instance_uid=instance.sop_instance_uid,
        sop_class_uid=instance.sop_class_uid,
        spool_path=Path(instance.spool_path),
        patient_age_years=instance.patient_age_years,
        revision=instance.revision,
        rejected_at=instance.rejected_at,
    )


def study_facts(session: Session, study_id: int) -> StudyFacts:
    study = session.get(Study, study_id)
    if study is None:
        raise NotFoundError(f"study {study_id} does not exist")
    return StudyFacts(
        study_id=study.id,
        study_description=study.study_description,
        instances=tuple(instance_summary(i) for i in study.instances),
    )


def first_instance(session: Session, study_id: int) -> tuple[str, str | None]:
    """(Study Instance UID, spool path of its first instance): where a study's patient header is read at send time."""
    uid = session.scalar(select(Study.study_instance_uid).where(Study.id == study_id))
    if uid is None:
        raise NotFoundError(f"study {study_id} does not exist")
    path = session.scalar(
        select(Instance.spool_path).where(Instance.study_id == study_id).order_by(Instance.id).limit(1)
    )
    return uid, path


def job_senders(session: Session, job_id: int) -> set[str]:
    """The calling AE titles that sent the job's study: where "return to sender" routes its results."""
    rows = session.scalars(
        select(Instance.calling_ae_title)
        .join(Job, Job.study_id == Instance.study_id)
        .where(Job.id == job_id, Instance.calling_ae_title.is_not(None))
        .distinct()
    )
    return {row for row in rows if row}
