"""Retention: the sweeper removes spooled instances that are no longer needed; their records stay.

A file is deleted before its row is marked, so a crash in between leaves the row to be purged again (the file is
already gone) rather than a file the records say is gone.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from pathlib import Path

from config.settings import RetentionSettings
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
