"""Retraction: a job's results withdrawn from everywhere they went.

A rejection KOS (``worker.encode.kos``) references the job's SR, SC and GSPS and goes to every DICOM destination that
received them; the RIS gets an ORU deleting the observations, the EHR the DiagnosticReport as entered-in-error, and a
webhook that was told of the result is told of its withdrawal. Everything goes through the delivery rows (retry, dead
letter, re-send), and a retraction asked for twice sends everything once. An operator retracts from the dashboard
("this model version is withdrawn"); an IOCM rejection of the source images retracts too.
"""

from __future__ import annotations

import logging
from pathlib import Path

from sqlalchemy.orm import Session

from config.settings import Settings
from db import audit, deliveries, jobs, rejections, results
from db.engine import SessionFactory
from db.lifecycle import Actor
from db.models import AuditKind, Channel, JobState, MessagePurpose, RejectionReason, ResultKind
from models.imaging import read_dataset
from worker.encode.bundle import EncodedObject
from worker.encode.kos import build_rejection_kos

logger = logging.getLogger(__name__)

WITHDRAWABLE = (ResultKind.SR, ResultKind.SC, ResultKind.GSPS, ResultKind.SEG)


class NothingToRetractError(ValueError):
    """The job made no result object."""


def retract_job(
    settings: Settings,
    session_factory: SessionFactory,
    job_id: int,
    reason: RejectionReason,
    why: str,
    actor: str | None = None,
    by: Actor = Actor.OPERATOR,
) -> list[int]:
    """Withdraw the job's results; returns the deliveries to send (none when it was already retracted)."""
    with session_factory() as session:
        if jobs.job_state(session, job_id) is JobState.RETRACTED:
            return []
        made = [(r.kind, r.path) for r in results.job_results(session, job_id) if r.kind in WITHDRAWABLE]
    if not made:
        raise NothingToRetractError(f"job {job_id} has no result to retract")
    headers = [read_dataset(path, header_only=True) for _, path in made]
    description = f"AI result withdrawn: {why}"
    kos = EncodedObject(ResultKind.KOS, build_rejection_kos(headers, reason, settings.equipment, description))
    path = kos.write(settings.results_dir)
    with session_factory.begin() as session:
        if jobs.job_state(session, job_id) is JobState.RETRACTED:  # retracted meanwhile: once is enough
            return []
        detail = f"results retracted ({reason.meaning}): {why}"
        jobs.transition_job(session, job_id, JobState.RETRACTED, reason=detail[:1000])
        if actor is not None:
            audit.record_audit(session, AuditKind.OPERATOR_ACTION, None, None, f"retract job {job_id}: {why}", actor)
        planned = _plan(settings, session, job_id, kos, path)
    logger.warning("job %d retracted by %s: %d deliveries", job_id, by.value, len(planned))
    return planned


def _plan(settings: Settings, session: Session, job_id: int, kos: EncodedObject, path: Path) -> list[int]:
    """The KOS to every DICOM destination that holds one of the objects; a retraction message to every RIS, EHR and
    webhook that was sent the result."""
    own = [r for r in results.job_result_rows(session, job_id) if r.kind in WITHDRAWABLE]
    kos_id = results.upsert_result_object(session, job_id, kos.record(path))
    object_ids = [r.id for r in own]
    holders = deliveries.sent_to(session, object_ids, Channel.DICOM)
    takers = {d.name for d in settings.destinations if "KOS" in d.kinds}
    planned = deliveries.ensure_deliveries(session, [kos_id], [name for name in holders if name in takers])
    sr_ids = [r.id for r in own if r.kind is ResultKind.SR]
    for channel in (Channel.HL7, Channel.FHIR, Channel.WEBHOOK):
        names = deliveries.sent_to(session, sr_ids, channel)
        planned += deliveries.ensure_deliveries(session, sr_ids, names, channel, MessagePurpose.RETRACTION)
    return planned


def withdraw_rejected(settings: Settings, session_factory: SessionFactory, study_id: int, job_id: int) -> list[int]:
    """Before a study's new job is analysed: retract its earlier results made from images the PACS has since rejected
    (IOCM). Returns their deliveries."""
    with session_factory() as session:
        tainted = rejections.tainted_jobs(session, study_id, job_id)
    planned: list[int] = []
    for earlier, code in tainted:
        reason = (RejectionReason.from_code(code) or RejectionReason.QUALITY).for_our_results
        why = f"the PACS rejected images it was made from ({code})"
        try:
            planned += retract_job(settings, session_factory, earlier, reason, why, by=Actor.REJECTION)
        except NothingToRetractError:
            continue
    return planned
