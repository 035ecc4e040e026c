"""A study's conversation with a DICOM destination: its objects waiting for the same destination, sent over one
association by one task (``worker.deliver.deliver_conversation``); each keeps its own delivery row."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from db.deliveries import DeliveryWork, delivery_work
from db.models import Channel, Delivery, DeliveryState, ResultObject, utcnow


def conversation_companions(session: Session, work: DeliveryWork, due_by: datetime) -> list[DeliveryWork]:
    """The other objects of ``work``'s job waiting for the same DICOM destination, due by ``due_by``: they go over
    the same association."""
    if work.channel is not Channel.DICOM:
        return []
    ids = session.scalars(
        select(Delivery.id)
        .join(ResultObject)
        .where(
            ResultObject.job_id == work.job_id,
            Delivery.destination_name == work.destination_name,
            Delivery.channel == Channel.DICOM,
            Delivery.state == DeliveryState.PENDING,
            Delivery.id != work.delivery_id,
            or_(Delivery.retry_at.is_(None), Delivery.retry_at <= due_by),
        )
        .order_by(Delivery.id)
    )
    return [delivery_work(session, delivery_id) for delivery_id in list(ids)]


def conversation_leaders(session: Session, delivery_ids: Sequence[int], announced: Sequence[int] = ()) -> list[int]:
    """The deliveries to send a message for: one per job and DICOM destination (its companions go with it,
    ``conversation_companions``), and every message to the RIS, the EHR or a webhook. A job and destination that
    one of ``announced`` already has a conversation with gets none (that conversation takes the job's objects
    until its analysis ends), nor does a delivery ``announced`` itself."""

    def keyed(ids: Sequence[int]) -> list[tuple[int, Channel, str, int]]:
        rows = session.execute(
            select(Delivery.id, Delivery.channel, Delivery.destination_name, ResultObject.job_id)
            .join(ResultObject)
            .where(Delivery.id.in_(ids))
        )
        return [(delivery_id, channel, name, job_id) for delivery_id, channel, name, job_id in rows]

    talking = {(job_id, name) for _, channel, name, job_id in keyed(announced) if channel is Channel.DICOM}
    fresh = set(delivery_ids) - set(announced)
    leaders: dict[tuple[int, str], int] = {}
    others: list[int] = []
    for delivery_id, channel, destination_name, job_id in keyed(sorted(fresh)):
        if channel is not Channel.DICOM:
            others.append(delivery_id)
        elif (key := (job_id, destination_name)) not in talking:
            leaders[key] = min(delivery_id, leaders.get(key, delivery_id))
    return sorted([*leaders.values(), *others])


def conversation_retry_due_in(session: Session, delivery_id: int) -> float:
    """Seconds until the first retry of this delivery's conversation is due: its own, or a companion's that failed
    while it was sent (0 when one is due now)."""
    work = delivery_work(session, delivery_id)
    waiting = [c.retry_at for c in conversation_companions(session, work, utcnow() + timedelta(days=3650))]
    if work.state is DeliveryState.PENDING:
        waiting.append(work.retry_at)
    due = [retry_at for retry_at in waiting if retry_at is not None]
    return 0.0 if len(due) < len(waiting) or not due else max(0.0, (min(due) - utcnow()).total_seconds())
