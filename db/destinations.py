"""Destinations an operator paused, and the deliveries that wait for them (the destinations themselves are
settings)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from db.deliveries import due_now
from db.models import Delivery, DeliveryState, DestinationState, utcnow


def paused_destinations(session: Session) -> set[str]:
    return set(session.scalars(select(DestinationState.name).where(DestinationState.paused.is_(True))))


def is_paused(session: Session, name: str) -> bool:
    return bool(session.scalar(select(DestinationState.paused).where(DestinationState.name == name)))


def set_paused(session: Session, name: str, paused: bool, actor: str | None) -> None:
    row = session.get(DestinationState, name, with_for_update=True)
    if row is None:
        row = DestinationState(name=name)
        session.add(row)
    row.paused = paused
    row.changed_by = actor
    row.changed_at = utcnow()


def waiting_deliveries(session: Session, name: str) -> list[int]:
    """PENDING deliveries to one destination: what a resume sends, each due now."""
    ids = list(
        session.scalars(
            select(Delivery.id)
            .where(Delivery.destination_name == name, Delivery.state == DeliveryState.PENDING)
            .order_by(Delivery.id)
        )
    )
    due_now(session, ids)
    return ids
