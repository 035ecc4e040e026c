"""Retention: the sweeper removes spooled instances, result files, whole studies' records and old audit rows, as
``[retention]`` allows.

A file is deleted before its row is marked or deleted, so a crash in between leaves the row to be purged again (the
file is already gone) rather than a file that no record names. Each study's records go in one transaction.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from pathlib import Path

from config.records import RetentionSettings
from config.settings import Settings
from db import retention
from db.engine import SessionFactory
from db.models import utcnow

logger = logging.getLogger(__name__)


def _revisions(path: Path) -> list[Path]:
    """The spooled file and every earlier revision of the same instance beside it (``<sop>.dcm``, ``<sop>.rN.dcm``)."""
    sop = path.name.removesuffix(".dcm").split(".r")[0]  # a UID holds digits and dots only: ".r" marks a revision
    earlier = [p for p in path.parent.glob(f"{sop}.r*.dcm") if p.name[len(sop) + 2 : -4].isdigit()]
    return [path, path.parent / f"{sop}.dcm", *earlier]


def purge_spool(session_factory: SessionFactory, settings: RetentionSettings, now: datetime | None = None) -> int:
    """Remove what ``settings`` allows; returns how many instances were purged."""
    now = now or utcnow()
    cutoff = now - timedelta(days=settings.spool_days) if settings.spool_days is not None else None
    purged = 0
    while True:
        with session_factory() as session:
            batch = retention.purgeable_instances(session, settings.purge_after_delivery, cutoff)
        if not batch:
            break
        for _, path in batch:
            try:
                for revision in _revisions(Path(path)):
                    revision.unlink(missing_ok=True)
            except OSError as exc:
                logger.error("retention: spooled file not removed: %s", exc.strerror or type(exc).__name__)
                return purged
        with session_factory.begin() as session:
            retention.mark_purged(session, [instance_id for instance_id, _ in batch])
        purged += len(batch)
    if purged:
        logger.info("retention: %d spooled instances purged", purged)
    return purged


def _remove(paths: list[str], revisions: bool = False) -> bool:
    """Unlink each file (and, for spooled files, its earlier revisions); False after logging when one cannot go."""
    try:
        for path in paths:
            for target in _revisions(Path(path)) if revisions else [Path(path)]:
                target.unlink(missing_ok=True)
    except OSError as exc:
        logger.error("retention: file not removed: %s", exc.strerror or type(exc).__name__)
        return False
    return True


def purge_results(session_factory: SessionFactory, days: float, now: datetime | None = None) -> int:
    """Remove the files of result objects whose job finished more than ``days`` ago; returns how many."""
    cutoff = (now or utcnow()) - timedelta(days=days)
    purged = 0
    while True:
        with session_factory() as session:
            batch = retention.purgeable_results(session, cutoff)
        if not batch or not _remove([path for _, path in batch]):
            break
        with session_factory.begin() as session:
            retention.mark_results_purged(session, [result_id for result_id, _ in batch])
        purged += len(batch)
    return purged


def purge_records(session_factory: SessionFactory, days: float, now: datetime | None = None) -> int:
    """Delete every record of studies idle for more than ``days``, their files first; returns how many studies."""
    cutoff = (now or utcnow()) - timedelta(days=days)
    deleted = 0
    while True:
        with session_factory() as session:
            batch = retention.purgeable_studies(session, cutoff)
        if not batch:
            break
        for study in batch:
            if not (_remove(study.spool_paths, revisions=True) and _remove(study.result_paths)):
                return deleted
            with session_factory.begin() as session:
                deleted += retention.delete_study_records(session, study.study_id)
    return deleted


def apply_retention(session_factory: SessionFactory, settings: Settings, now: datetime | None = None) -> None:
    """Everything ``settings.retention`` asks for, in one sweeper pass."""
    policy = settings.retention
    purge_spool(session_factory, policy, now)
    if policy.results_days is not None and (count := purge_results(session_factory, policy.results_days, now)):
        logger.info("retention: %d result files removed", count)
    if policy.records_days is not None and (count := purge_records(session_factory, policy.records_days, now)):
        logger.info("retention: the records of %d studies deleted", count)
    if policy.audit_days is not None:
        with session_factory.begin() as session:
            count = retention.delete_audit_before(session, (now or utcnow()) - timedelta(days=policy.audit_days))
        if count:
            logger.info("retention: %d audit rows deleted", count)
