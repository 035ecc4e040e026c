"""Repository functions for the node's moving parts: destinations an operator paused, and live worker processes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from db.models import Delivery, DeliveryState, DestinationState, WorkerHeartbeat, utcnow


@dataclass(frozen=True)
class WorkerRecord:
    hostname: str
    queues: str
    device: str
    detector: str
    detector_version: str
    started_at: datetime
    seen_at: datetime


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
    """PENDING deliveries to one destination: what a resume sends."""
    return list(
        session.scalars(
            select(Delivery.id)
            .where(Delivery.destination_name == name, Delivery.state == DeliveryState.PENDING)
            .order_by(Delivery.id)
        )
    )


def beat(session: Session, record: WorkerRecord) -> None:
    """Insert or refresh a worker's row."""
    row = session.get(WorkerHeartbeat, record.hostname)
    if row is None:
        row = WorkerHeartbeat(hostname=record.hostname, started_at=record.started_at)
        session.add(row)
    row.queues = record.queues
    row.device = record.device
    row.detector = record.detector
    row.detector_version = record.detector_version
    row.seen_at = record.seen_at


def forget_worker(session: Session, hostname: str) -> None:
    session.execute(delete(WorkerHeartbeat).where(WorkerHeartbeat.hostname == hostname))


def online_workers(session: Session, seen_since: datetime) -> list[WorkerRecord]:
    rows = session.scalars(
        select(WorkerHeartbeat).where(WorkerHeartbeat.seen_at >= seen_since).order_by(WorkerHeartbeat.hostname)
    )
    return [
        WorkerRecord(r.hostname, r.queues, r.device, r.detector, r.detector_version, r.started_at, r.seen_at)
        for r in rows
    ]
