"""The delivery stage: one result object to one DICOM destination (C-STORE), or one message about a result to the RIS,
the EHR or a webhook; every outcome recorded the same way (sent, retry with backoff, dead letter)."""

from __future__ import annotations

import enum
import logging
import random
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from pathlib import Path

from pydicom.uid import generate_uid

from config.outputs import Destination
from config.settings import WorkerSettings
from db import conversations, deliveries, destinations, jobs
from db.deliveries import DeliveryWork
from db.models import Channel, DeliveryState, JobState, MessagePurpose, ResultKind, utcnow
from dicom_node.scu import StoreOutcome, send_files
from worker.audit import audit_sent
from worker.clinical.send import deliver_message
from worker.context import WorkerContext
from worker.encode import sr

logger = logging.getLogger(__name__)


class DeliveryOutcome(enum.StrEnum):
    SENT = "SENT"
    COMMIT_PENDING = "COMMIT_PENDING"
    RETRY = "RETRY"
    DEAD_LETTER = "DEAD_LETTER"
    ALREADY_SENT = "ALREADY_SENT"
    PAUSED = "PAUSED"  # an operator paused the destination; resuming sends it
    NOT_DUE = "NOT_DUE"  # a duplicate message before the retry is due; the retry's own message comes later


EARLY_TOLERANCE = timedelta(seconds=1)
"""A retry message may be handed over a little before its countdown ends."""


def backoff_seconds(attempt: int, settings: WorkerSettings, rng: random.Random | None = None) -> float:
    """Exponential backoff with full jitter: uniform in [0, min(cap, base·2^(attempt-1))]."""
    ceiling = min(settings.delivery_backoff_max_s, settings.delivery_backoff_s * 2 ** max(0, attempt - 1))
    return (rng or random.Random()).uniform(0.5 * ceiling, ceiling)


def retry_window_s(settings: WorkerSettings) -> tuple[float, float]:
    """(shortest, longest) time from a delivery's first attempt to its last before the dead letter, under the jitter
    above: the destination outage the retries ride out for certain, and at most."""
    ceilings = [
        min(settings.delivery_backoff_max_s, settings.delivery_backoff_s * 2 ** (attempt - 1))
        for attempt in range(1, settings.delivery_max_retries + 1)
    ]
    return 0.5 * sum(ceilings), float(sum(ceilings))


def _destination(context: WorkerContext, name: str) -> Destination | None:
    return next((d for d in context.settings.destinations if d.name == name), None)


def deliver_result(context: WorkerContext, delivery_id: int) -> DeliveryOutcome:
    """This one delivery: its object over an association of its own, or its message."""
    return _deliver(context, delivery_id, conversation=False)


def deliver_conversation(context: WorkerContext, delivery_id: int) -> DeliveryOutcome:
    """This delivery and every other object of its job that waits for the same DICOM destination, over one
    association (the delivery task's entry): a study's SR, SC and GSPS cost one association and one task, not three.

    Each object keeps its own delivery row and outcome; the one returned is the worst of them (a retry first), so the
    task retries while any of them waits for one."""
    return _deliver(context, delivery_id, conversation=True)


def _deliver(context: WorkerContext, delivery_id: int, conversation: bool) -> DeliveryOutcome:
    with context.session_factory.begin() as session:
        work = deliveries.delivery_work(session, delivery_id)
        paused = destinations.is_paused(session, work.destination_name)
        due_by = utcnow() + EARLY_TOLERANCE
        companions = conversations.conversation_companions(session, work, due_by) if conversation else []
    settled = work.state in (DeliveryState.SENT, DeliveryState.COMMIT_PENDING)
    if settled and not companions:
        return DeliveryOutcome.ALREADY_SENT
    if paused:
        logger.info("delivery %d waits: %s is paused", delivery_id, work.destination_name)
        return DeliveryOutcome.PAUSED
    if work.state is DeliveryState.PENDING and work.retry_at is not None and utcnow() < work.retry_at - EARLY_TOLERANCE:
        # The sweeper sent it again while its first message waited in a long queue: acting on both would spend
        # the retries meant to span an outage within seconds.
        logger.info("delivery %d: a duplicate message before its retry is due; dropped", delivery_id)
        return DeliveryOutcome.NOT_DUE
    if work.channel is not Channel.DICOM:
        if (unsendable := _unsendable(work)) is not None:
            return _dead_letter(context, delivery_id, work.job_id, unsendable)
        sent = deliver_message(context.settings, context.session_factory, work)
        return _settle(context, work, sent.ok, sent.permanent_failure, f"{work.destination_name}: {sent.error}")
    members = companions if settled else [work, *companions]
    return _worst(_converse(context, work, members) if conversation else _store(context, members))


Follow = Callable[[frozenset[str] | None], list[DeliveryWork]]
"""The conversation's next objects, given the SOP classes its open association carries (None: a new one)."""


def _converse(context: WorkerContext, leader: DeliveryWork, members: list[DeliveryWork]) -> list[DeliveryOutcome]:
    """Send ``members``, then the objects of the same job and destination that its analysis records meanwhile (it
    records each image's objects as soon as they are encoded, the SR last): over the same association where it was
    offered their SOP classes, else over a new one."""
    handed = {m.delivery_id for m in members}

    def follow(carried: frozenset[str] | None) -> list[DeliveryWork]:
        return _follow(context, leader, handed, carried)

    outcomes: list[DeliveryOutcome] = []
    while members:
        outcomes += _store(context, members, follow)
        members = follow(None)
    return outcomes


_FOLLOW_POLL_S = 0.01


def _follow(
    context: WorkerContext, leader: DeliveryWork, handed: set[int], carried: frozenset[str] | None
) -> list[DeliveryWork]:
    """The objects of ``leader``'s job waiting for its destination that this conversation has not handed yet; while
    the job's analysis is still encoding (a live lease) and none is there, wait for the next. [] once the analysis
    has finished and none is left, or when those there need a new association (none in ``carried``)."""
    give_up = time.monotonic() + context.settings.worker.analysis_lease_s
    while True:
        with context.session_factory() as session:
            # The job's state is read before the objects: the analysis records its last objects and leaves
            # ANALYZING in one transaction, so a state read after that transaction finds them in the read that follows.
            encoding = jobs.is_encoding(session, leader.job_id, utcnow())
            due = conversations.conversation_companions(session, leader, utcnow() + EARLY_TOLERANCE)
        new = [w for w in due if w.delivery_id not in handed]
        fits = new if carried is None else [w for w in new if w.sop_class_uid in carried]
        if fits or new or not encoding or time.monotonic() > give_up:
            handed.update(w.delivery_id for w in fits)
            return fits
        time.sleep(_FOLLOW_POLL_S)


def _store(
    context: WorkerContext, members: Sequence[DeliveryWork], follow: Follow | None = None
) -> list[DeliveryOutcome]:
    """C-STORE the members' objects to their (one) destination over one association, and those ``follow`` hands
    while it is open; each outcome recorded."""
    outcomes: list[DeliveryOutcome] = []
    sendable = _sendable(context, members, outcomes)
    if not sendable:
        return outcomes
    name = sendable[0].destination_name
    destination = _destination(context, name)
    if destination is None:
        reason = f"destination {name!r} not configured"
        return outcomes + [_dead_letter(context, w.delivery_id, w.job_id, reason) for w in sendable]
    transaction_uid = generate_uid() if destination.storage_commitment else None
    if transaction_uid is not None:
        with context.session_factory.begin() as session:
            for work in sendable:
                deliveries.prepare_commitment(session, work.delivery_id, transaction_uid)
    settled: dict[int, DeliveryOutcome] = {}
    retry_at: list[datetime] = []

    def record(index: int, outcome: StoreOutcome) -> None:
        if not outcome.ok and not retry_at:
            # One backoff for every object that failed together, so that one retry message finds them all due;
            # counted from the first failure, not from before the send.
            attempts = max(w.attempts for w in sendable) + 1
            retry_at.append(utcnow() + timedelta(seconds=backoff_seconds(attempts, context.settings.worker)))
        due = retry_at[0] if retry_at else utcnow()
        settled[index] = _recorded(context, sendable[index], destination, outcome, transaction_uid, due)

    def more(carried: frozenset[str]) -> list[Path]:
        following = _sendable(context, follow(carried), outcomes) if follow is not None else []
        sendable.extend(following)
        return [w.path for w in following]

    sent = send_files(
        destination,
        [w.path for w in sendable],
        calling_ae=context.settings.scp.ae_title,
        commitment_transaction_uid=transaction_uid,
        on_response=record,  # each object recorded as its response arrives, before the next one goes
        # A commitment request covers the objects in hand; those that come later go over a new association.
        more=more if transaction_uid is None else None,
        also_propose=[sr.SOP_CLASS] if all(w.kind is not ResultKind.SR for w in sendable) else [],
    )
    for index, outcome in enumerate(sent):
        if index not in settled:
            record(index, outcome)
    return outcomes + [settled[index] for index in range(len(sendable))]


def _sendable(
    context: WorkerContext, members: Sequence[DeliveryWork], outcomes: list[DeliveryOutcome]
) -> list[DeliveryWork]:
    """The members that can still be sent; each of the others is dead-lettered, its outcome added to ``outcomes``."""
    sendable = []
    for work in members:
        if (unsendable := _unsendable(work)) is not None:
            outcomes.append(_dead_letter(context, work.delivery_id, work.job_id, unsendable))
        else:
            sendable.append(work)
    return sendable


def _recorded(
    context: WorkerContext,
    work: DeliveryWork,
    destination: Destination,
    outcome: StoreOutcome,
    transaction_uid: str | None,
    retry_at: datetime,
) -> DeliveryOutcome:
    """One object's C-STORE outcome, audited and recorded."""
    if outcome.ok:
        audit_sent(context, work, destination)
    if outcome.ok and transaction_uid is not None:
        return _await_commitment(context, work, destination.name)
    reason = f"{destination.name}: {outcome.error}"
    return _settle(context, work, outcome.ok, outcome.permanent_failure, reason, retry_at)


def _await_commitment(context: WorkerContext, work: DeliveryWork, destination_name: str) -> DeliveryOutcome:
    with context.session_factory.begin() as session:
        state = deliveries.await_commitment(session, work.delivery_id)
    if state is DeliveryState.SENT:
        logger.info("delivery %d committed by %s", work.delivery_id, destination_name)
        return DeliveryOutcome.SENT
    logger.info("delivery %d stored at %s; awaiting its commitment report", work.delivery_id, destination_name)
    return DeliveryOutcome.COMMIT_PENDING


_SEVERITY = (
    DeliveryOutcome.RETRY,
    DeliveryOutcome.DEAD_LETTER,
    DeliveryOutcome.COMMIT_PENDING,
    DeliveryOutcome.SENT,
)


def _worst(outcomes: Sequence[DeliveryOutcome]) -> DeliveryOutcome:
    """A conversation's outcome: a retry first (the task must come back), then a dead letter, a pending commitment."""
    return min(outcomes, key=lambda o: _SEVERITY.index(o) if o in _SEVERITY else len(_SEVERITY))


def _unsendable(work: DeliveryWork) -> str | None:
    """Why this delivery can never go out, or None."""
    if _withdrawn(work):
        return "withdrawn before it was sent (the job was retracted)"
    return "its result file was removed by retention" if work.purged else None


def _withdrawn(work: DeliveryWork) -> bool:
    """A retracted job's results that were still waiting are never sent; its KOS and retraction messages are."""
    retraction = work.kind is ResultKind.KOS or work.purpose is MessagePurpose.RETRACTION
    return work.job_state is JobState.RETRACTED and not retraction


def _settle(
    context: WorkerContext,
    work: DeliveryWork,
    ok: bool,
    permanent: bool,
    reason: str,
    retry_at: datetime | None = None,
) -> DeliveryOutcome:
    """Record one attempt's outcome, whatever the channel: sent, refused (dead letter at once) or retry (when
    ``retry_at``, else after its own backoff)."""
    delivery_id = work.delivery_id
    if ok:
        with context.session_factory.begin() as session:
            deliveries.record_delivery_attempt(session, delivery_id, DeliveryState.SENT, None)
            deliveries.settle_job(session, work.job_id)
        logger.info("delivery %d sent to %s", delivery_id, work.destination_name)
        return DeliveryOutcome.SENT
    if permanent:
        # The destination refused this object or message; sending it again would only loop.
        return _dead_letter(context, delivery_id, work.job_id, reason)
    retry_at = retry_at or utcnow() + timedelta(seconds=backoff_seconds(work.attempts + 1, context.settings.worker))
    with context.session_factory.begin() as session:
        attempts = deliveries.record_delivery_attempt(session, delivery_id, DeliveryState.PENDING, reason, retry_at)
    if attempts > context.settings.worker.delivery_max_retries:
        return _dead_letter(context, delivery_id, work.job_id, f"{reason} after {attempts} attempts", count=False)
    logger.warning("delivery %d attempt %d failed: %s", delivery_id, attempts, reason)
    return DeliveryOutcome.RETRY


def _dead_letter(
    context: WorkerContext, delivery_id: int, job_id: int, reason: str, count: bool = True
) -> DeliveryOutcome:
    with context.session_factory.begin() as session:
        if count:
            deliveries.record_delivery_attempt(session, delivery_id, DeliveryState.DEAD_LETTER, reason)
        else:
            deliveries.set_delivery_state(session, delivery_id, DeliveryState.DEAD_LETTER)
        # A retracted job stays retracted; one still analysing (an image's objects go before its SR) is settled
        # when its analysis ends (``deliveries.settle_job``).
        if jobs.job_state(session, job_id) not in (JobState.RETRACTED, JobState.ANALYZING):
            jobs.transition_job(session, job_id, JobState.DEAD_LETTER, reason=f"delivery failed: {reason}")
    logger.error("delivery %d dead-lettered: %s", delivery_id, reason)
    return DeliveryOutcome.DEAD_LETTER
