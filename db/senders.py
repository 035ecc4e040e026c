"""The senders seen to split studies across associations (``dicom_node.senders``), shared by a node's SCP processes."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from db.models import SplittingSender, utcnow


def splits_studies(session: Session, calling_ae: str) -> bool:
    return session.get(SplittingSender, calling_ae) is not None


def record_splitting(session: Session, calling_ae: str) -> bool:
    """Whether the sender is new. Safe against another SCP process recording the same sender at once: a conflicting
    insert is skipped, never an error that would roll back the caller's transaction (the studies' completion)."""
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    inserted = session.execute(
        dialect.insert(SplittingSender)
        .values(calling_ae_title=calling_ae, learned_at=utcnow())
        .on_conflict_do_nothing(index_elements=[SplittingSender.calling_ae_title])
        .returning(SplittingSender.calling_ae_title)  # the row count is not reliable here on every driver
    )
    return inserted.first() is not None


def learned_senders(session: Session) -> list[tuple[str, datetime]]:
    """Every sender learned, with when, by AE title."""
    rows = session.execute(
        select(SplittingSender.calling_ae_title, SplittingSender.learned_at).order_by(SplittingSender.calling_ae_title)
    )
    return [(title, at) for title, at in rows]


def forget_sender(session: Session, calling_ae: str) -> bool:
    """Whether the sender was learned; its next released studies complete at the release again."""
    removed = session.execute(
        delete(SplittingSender)
        .where(SplittingSender.calling_ae_title == calling_ae)
        .returning(SplittingSender.calling_ae_title)
    )
    return removed.first() is not None
