"""The audit trail: peers refused or accepted, operators' actions, PHI reveals. Never patient data itself."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from db.models import AuditEvent, AuditKind


@dataclass(frozen=True)
class AuditRecord:
    at: datetime
    kind: str
    actor: str | None
    calling_ae_title: str | None
    peer_address: str | None
    detail: str | None


def record_audit(
    session: Session,
    kind: AuditKind,
    calling_ae_title: str | None,
    peer_address: str | None,
    detail: str | None,
    actor: str | None = None,
) -> None:
    session.add(
        AuditEvent(kind=kind, calling_ae_title=calling_ae_title, peer_address=peer_address, detail=detail, actor=actor)
    )


def audit_trail(session: Session, limit: int = 100, kinds: Sequence[AuditKind] | None = None) -> list[AuditRecord]:
    """The newest ``limit`` events, of ``kinds`` when given."""
    query = select(AuditEvent).order_by(AuditEvent.id.desc()).limit(limit)
    if kinds:
        query = query.where(AuditEvent.kind.in_(kinds))
    return [
        AuditRecord(a.at, a.kind.value, a.actor, a.calling_ae_title, a.peer_address, a.detail)
        for a in session.scalars(query)
    ]


def recent_login_failures(
    session: Session, since: datetime, actor: str | None = None, address: str | None = None
) -> int:
    """Failed logins since ``since`` for the name (counted from its last successful login, if later) or from the
    address: what login throttling counts."""
    start = since
    if actor is not None:
        last_success = session.scalar(
            select(func.max(AuditEvent.at)).where(
                AuditEvent.kind == AuditKind.LOGIN_SUCCEEDED, AuditEvent.actor == actor
            )
        )
        if last_success is not None and last_success > start:
            start = last_success
    query = (
        select(func.count())
        .select_from(AuditEvent)
        .where(AuditEvent.kind == AuditKind.LOGIN_FAILED, AuditEvent.at > start)
    )
    if actor is not None:
        query = query.where(AuditEvent.actor == actor)
    if address is not None:
        query = query.where(AuditEvent.peer_address == address)
    return int(session.scalar(query) or 0)
