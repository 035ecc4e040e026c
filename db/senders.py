"""The senders seen to split studies across associations (``dicom_node.senders``), shared by a node's SCP processes."""

from __future__ import annotations

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from db.models import SplittingSender, utcnow


def splits_studies(session: Session, calling_ae: str) -> bool:
    return session.get(SplittingSender, calling_ae) is not None


def record_splitting(session: Session, calling_ae: str) -> None:
    """Idempotent, and safe against another SCP process recording the same sender at once: a conflicting insert is
    skipped, never an error that would roll back the caller's transaction (the studies' completion)."""
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    session.execute(
        dialect.insert(SplittingSender)
        .values(calling_ae_title=calling_ae, learned_at=utcnow())
        .on_conflict_do_nothing(index_elements=[SplittingSender.calling_ae_title])
    )
