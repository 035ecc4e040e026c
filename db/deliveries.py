"""Repository functions for deliveries and storage commitment: the only place their SQL lives."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, cast

from sqlalchemy import CursorResult, func, select, update
from sqlalchemy.orm import Session

from db.errors import NotFoundError
from db.jobs import job_state, transition_job
from db.models import (
    Channel,
    Delivery,
    DeliveryAttempt,
    DeliveryState,
    JobState,
    MessagePurpose,
    ResultKind,
    ResultObject,
    utcnow,
)

logger = logging.getLogger(__name__)

WAITING_DELIVERY_STATES = (DeliveryState.PENDING, DeliveryState.COMMIT_PENDING)
"""Not yet settled: to be sent, or stored and awaiting the commitment report."""


@dataclass(frozen=True)
class DeliveryWork:
    delivery_id: int
    job_id: int
    destination_name: str
    state: DeliveryState
    attempts: int
    path: Path
    sop_instance_uid: str
    channel: Channel = Channel.DICOM
    purpose: MessagePurpose = MessagePurpose.RESULT
    kind: ResultKind = ResultKind.SR
    job_state: JobState = JobState.ENCODED
    purged: bool = False
    """Retention removed the object's file: it can no longer be sent."""
    sop_class_uid: str = ""
    study_id: int = 0
    retry_at: datetime | None = None
    """When the next attempt is due, after a failed one; None: now."""


def ensure_deliveries(
    session: Session,
    result_ids: Sequence[int],
    destinations: Sequence[str],
    channel: Channel = Channel.DICOM,
    purpose: MessagePurpose = MessagePurpose.RESULT,
) -> list[int]:
    """One delivery per (object, destination, purpose); returns the ids still to send. What was sent is not resent.

    For HL7, FHIR and webhooks the object is the study's SR: a message about it goes once per SR, however often the
    analysis runs, and a changed result (a new SR) gets its own."""
    pending: list[int] = []
    for result_id in result_ids:
        for name in destinations:
            delivery = session.scalars(
                select(Delivery).where(
                    Delivery.result_object_id == result_id,
                    Delivery.destination_name == name,
                    Delivery.purpose == purpose,
                )
            ).one_or_none()
            if delivery is None:
                delivery = Delivery(
                    result_object_id=result_id,
                    destination_name=name,
                    state=DeliveryState.PENDING,
                    channel=channel,
                    purpose=purpose,
                )
                session.add(delivery)
                session.flush()
            if delivery.state is not DeliveryState.SENT:
                delivery.state = DeliveryState.PENDING
                pending.append(delivery.id)
    return pending


def _delivery(session: Session, delivery_id: int) -> Delivery:
    delivery = session.get(Delivery, delivery_id)
    if delivery is None:
        raise NotFoundError(f"delivery {delivery_id} does not exist")
    return delivery


def delivery_work(session: Session, delivery_id: int) -> DeliveryWork:
    d = _delivery(session, delivery_id)
    return DeliveryWork(
        delivery_id=d.id,
        job_id=d.result_object.job_id,
        destination_name=d.destination_name,
        state=d.state,
        attempts=d.attempts,
        path=Path(d.result_object.path),
        sop_instance_uid=d.result_object.sop_instance_uid,
        channel=d.channel,
        purpose=d.purpose,
        kind=d.result_object.kind,
        job_state=d.result_object.job.state,
        purged=d.result_object.purged_at is not None,
        sop_class_uid=d.result_object.sop_class_uid,
        study_id=d.result_object.job.study_id,
        retry_at=d.retry_at,
    )


def record_delivery_attempt(
    session: Session, delivery_id: int, state: DeliveryState, error: str | None, retry_at: datetime | None = None
) -> int:
    """Count an attempt and set its outcome (and, for a retry, when it is due); returns the attempt count."""
    d = _delivery(session, delivery_id)
    d.attempts += 1
    d.state = state
    d.last_error = error
    d.retry_at = retry_at
    d.updated_at = utcnow()
    session.add(DeliveryAttempt(delivery_id=delivery_id, outcome=state, error=error))
    return d.attempts


def job_delivery_states(session: Session, job_id: int) -> list[DeliveryState]:
    return list(
        session.scalars(
            select(Delivery.state).join(ResultObject).where(ResultObject.job_id == job_id).order_by(Delivery.id)
        )
    )


def set_delivery_state(session: Session, delivery_id: int, state: DeliveryState) -> None:
    """An explicit move (a re-send, a dead letter): whatever was due later, the next message is acted on."""
    d = _delivery(session, delivery_id)
    d.state = state
    d.retry_at = None
    d.updated_at = utcnow()


def due_now(session: Session, delivery_ids: Sequence[int]) -> None:
    """The next message for these deliveries is acted on, whenever their retry was due (a resume, a sweeper re-send)."""
    if delivery_ids:
        session.execute(update(Delivery).where(Delivery.id.in_(delivery_ids)).values(retry_at=None))


def settle_job(session: Session, job_id: int) -> JobState:
    """After a delivery changed: an ENCODED job whose every delivery is SENT becomes DELIVERED; one with nothing left
    to send but a dead-lettered delivery (others of its deliveries were re-sent) is DEAD_LETTER again.

    A job that is FAILED or NOT_ELIGIBLE keeps its state while its not-performed SR is delivered."""
    state = job_state(session, job_id)
    states = job_delivery_states(session, job_id)
    if state is not JobState.ENCODED or not states or any(s in WAITING_DELIVERY_STATES for s in states):
        return state
    if all(s is DeliveryState.SENT for s in states):
        transition_job(session, job_id, JobState.DELIVERED, "all objects delivered")
        return JobState.DELIVERED
    transition_job(session, job_id, JobState.DEAD_LETTER, reason="delivery failed: a delivery is still dead-lettered")
    return JobState.DEAD_LETTER


def prepare_commitment(session: Session, delivery_id: int, transaction_uid: str) -> None:
    """Record the transaction UID before the request goes out: the report may arrive before the sender returns."""
    d = _delivery(session, delivery_id)
    d.commitment_transaction_uid = transaction_uid
    d.updated_at = utcnow()


def await_commitment(session: Session, delivery_id: int) -> DeliveryState:
    """The object was stored and commitment requested; unless its report already came, it now waits for it.

    The report is written by another process, possibly between our read and our write, so every change here is a
    conditional UPDATE: a report's SENT is never overwritten by a stale COMMIT_PENDING."""
    now = utcnow()
    session.execute(
        update(Delivery).where(Delivery.id == delivery_id).values(attempts=Delivery.attempts + 1, updated_at=now)
    )
    session.add(DeliveryAttempt(delivery_id=delivery_id, outcome=DeliveryState.COMMIT_PENDING, error=None))
    session.execute(
        update(Delivery)
        .where(Delivery.id == delivery_id, Delivery.state == DeliveryState.PENDING)
        .values(state=DeliveryState.COMMIT_PENDING, last_error=None)
    )
    state = session.scalar(
        select(Delivery.state).where(Delivery.id == delivery_id).execution_options(populate_existing=True)
    )
    if state is None:
        raise NotFoundError(f"delivery {delivery_id} does not exist")
    return state


def record_commitment(session: Session, transaction_uid: str, committed: set[str], failed: dict[str, int]) -> list[int]:
    """Apply a storage commitment report; returns the ids of the jobs it touched.

    Committed objects are delivered. A failed one is dead-lettered with the reason, like a refused C-STORE: the
    destination has said it will not keep it, so re-sending in a loop cannot help (an operator can requeue)."""
    deliveries = session.scalars(
        select(Delivery).where(
            Delivery.commitment_transaction_uid == transaction_uid,
            Delivery.state.in_(WAITING_DELIVERY_STATES),
        )
    )
    jobs: set[int] = set()
    for d in list(deliveries):
        uid = d.result_object.sop_instance_uid
        if uid in committed:
            state, error = DeliveryState.SENT, None
        elif uid in failed:
            state, error = DeliveryState.DEAD_LETTER, f"storage commitment failed: 0x{failed[uid]:04X}"
        else:
            continue
        # Conditional, like await_commitment: only a delivery still waiting takes the report's verdict.
        changed = cast(
            CursorResult[Any],
            session.execute(
                update(Delivery)
                .where(Delivery.id == d.id, Delivery.state.in_(WAITING_DELIVERY_STATES))
                .values(state=state, last_error=error, updated_at=utcnow())
            ),
        )
        if changed.rowcount:
            session.add(DeliveryAttempt(delivery_id=d.id, outcome=state, error=error))
        if changed.rowcount and state is DeliveryState.DEAD_LETTER:
            transition_job(session, d.result_object.job_id, JobState.DEAD_LETTER, reason=error)
        jobs.add(d.result_object.job_id)
    session.flush()
    session.expire_all()
    for job_id in jobs:
        settle_job(session, job_id)
    return sorted(jobs)


def sent_to(session: Session, result_ids: Sequence[int], channel: Channel) -> list[str]:
    """The destinations of ``channel`` that hold (or were sent) any of these objects or messages about them."""
    rows = session.scalars(
        select(Delivery.destination_name)
        .where(
            Delivery.result_object_id.in_(result_ids),
            Delivery.channel == channel,
            Delivery.purpose == MessagePurpose.RESULT,
            Delivery.state.in_((DeliveryState.SENT, DeliveryState.COMMIT_PENDING)),
        )
        .distinct()
        .order_by(Delivery.destination_name)
    )
    return list(rows)


def deliveries_by_state(session: Session) -> dict[DeliveryState, int]:
    rows = session.execute(select(Delivery.state, func.count()).group_by(Delivery.state))
    return dict(rows.all())


def exhausted_dead_letters(session: Session) -> dict[str, list[int]]:
    """Destination → DICOM deliveries dead-lettered because their retries ran out (their last attempt failed
    transiently), never re-sent by the sweeper, whose object is still on disk: what a recovered destination may get.

    A delivery the destination refused, or one withdrawn, ends with a DEAD_LETTER attempt and is never here."""
    last_attempt = (
        select(DeliveryAttempt.outcome)
        .where(DeliveryAttempt.delivery_id == Delivery.id)
        .order_by(DeliveryAttempt.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    rows = session.execute(
        select(Delivery.destination_name, Delivery.id)
        .join(ResultObject, ResultObject.id == Delivery.result_object_id)
        .where(
            Delivery.state == DeliveryState.DEAD_LETTER,
            Delivery.channel == Channel.DICOM,
            Delivery.auto_resent_at.is_(None),
            ResultObject.purged_at.is_(None),
            last_attempt == DeliveryState.PENDING,
        )
        .order_by(Delivery.id)
    )
    found: dict[str, list[int]] = {}
    for name, delivery_id in rows:
        found.setdefault(name, []).append(delivery_id)
    return found


def mark_auto_resent(session: Session, delivery_id: int) -> None:
    _delivery(session, delivery_id).auto_resent_at = utcnow()


def retry_due_in(session: Session, delivery_id: int) -> float:
    """Seconds until the delivery's retry is due (0 when it is due now): the countdown of its retry message."""
    retry_at = _delivery(session, delivery_id).retry_at
    return 0.0 if retry_at is None else max(0.0, (retry_at - utcnow()).total_seconds())
