"""Live worker processes: each refreshes its row; the dashboard lists those seen recently."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from db.models import WorkerHeartbeat


@dataclass(frozen=True)
class WorkerRecord:
    hostname: str
    queues: str
    device: str
    detector: str
    detector_version: str
    started_at: datetime
    seen_at: datetime


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
