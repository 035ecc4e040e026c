"""Critical results nobody acknowledged in time: each is notified again, once, on every webhook (the sweeper calls
this after each pass). The dashboard shows them red from the same moment."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from config.settings import Settings
from db.engine import SessionFactory
from db.models import utcnow
from db.urgency import job_sr, overdue_for_reminder
from worker.delivery_plan import plan_reminders

logger = logging.getLogger(__name__)


def send_reminders(
    settings: Settings,
    session_factory: SessionFactory,
    enqueue_delivery: Callable[[int], None],
    now: datetime | None = None,
) -> list[int]:
    """Plan and enqueue the reminder deliveries; returns their ids."""
    if not settings.webhooks:
        return []
    planned: list[int] = []
    with session_factory.begin() as session:
        for job_id in overdue_for_reminder(
            session, timedelta(seconds=settings.urgency.acknowledge_within_s), now or utcnow()
        ):
            sr_id = job_sr(session, job_id)
            if sr_id is not None:
                planned += plan_reminders(settings, session, sr_id)
    for delivery_id in planned:  # after the commit, as the sweeper does: a lost message is found by the next pass
        enqueue_delivery(delivery_id)
    if planned:
        logger.warning("%d reminders sent for unacknowledged critical results", len(planned))
    return planned
