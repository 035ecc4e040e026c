"""The job lifecycle: one table of legal moves, who makes each, and the state sets derived from it.

``db.jobs.transition_job`` enforces the table; an illegal move raises ``IllegalTransitionError`` naming both states.
Every other list of states in the code (which a lease covers, which an operator may requeue, which end a job) is
derived here, so adding a state or a move is one edit.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping

from db.models import JobState


class Actor(enum.StrEnum):
    """Who moves a job."""

    COMPLETION = "completion"
    """The SCP's completion monitor, creating the job."""
    ANALYSIS = "analysis"
    """An analysis worker."""
    LEASE = "lease"
    """Lease and attempt bookkeeping: the sweeper, or a worker that finds a job's attempts used up."""
    DELIVERY = "delivery"
    """A delivery outcome: an io worker or a storage commitment report."""
    OPERATOR = "operator"
    """Someone at the dashboard or the CLI (audited)."""
    REJECTION = "rejection"
    """An IOCM rejection note from the PACS, withdrawing the images a job used."""


Q, A, E = JobState.QUEUED, JobState.ANALYZING, JobState.ENCODED
DELIVERED, COMPLETED, NOT_ELIGIBLE = JobState.DELIVERED, JobState.COMPLETED, JobState.NOT_ELIGIBLE
FAILED, DEAD, CANCELLED = JobState.FAILED, JobState.DEAD_LETTER, JobState.CANCELLED
RETRACTED = JobState.RETRACTED

# (from, to) → who may make the move. ``None`` as the source is the job's creation.
_MOVES: list[tuple[JobState | None, JobState, Actor]] = [
    (None, Q, Actor.COMPLETION),
    (None, NOT_ELIGIBLE, Actor.COMPLETION),  # not a chest study for us: recorded, never analysed
    (Q, A, Actor.ANALYSIS),
    (A, A, Actor.ANALYSIS),  # a worker takes over a job whose analysis lease ran out
    (A, E, Actor.ANALYSIS),
    (A, NOT_ELIGIBLE, Actor.ANALYSIS),  # the rules kept it from the detector (a not-performed SR may follow)
    (A, FAILED, Actor.ANALYSIS),
    (E, COMPLETED, Actor.ANALYSIS),  # no destination configured: the results are kept
    (E, DELIVERED, Actor.DELIVERY),
    (Q, Q, Actor.LEASE),  # its message was lost: sent again
    (A, Q, Actor.LEASE),  # its worker died: sent again
    (Q, DEAD, Actor.LEASE),  # attempts used up
    (A, DEAD, Actor.LEASE),
    (E, DEAD, Actor.DELIVERY),  # a destination refused an object, or retries ran out
    (NOT_ELIGIBLE, DEAD, Actor.DELIVERY),  # the same for a not-performed SR
    (FAILED, DEAD, Actor.DELIVERY),
    (DEAD, DEAD, Actor.DELIVERY),  # a second delivery of the job failed too
    (DEAD, E, Actor.OPERATOR),  # a dead-lettered delivery re-sent: the job waits for its deliveries again
    (COMPLETED, E, Actor.OPERATOR),  # a shadow result released: the job waits for its deliveries
    (Q, CANCELLED, Actor.OPERATOR),
    (Q, CANCELLED, Actor.REJECTION),  # its images were rejected before analysis began
    # Retraction: the results that were made (and perhaps sent) are withdrawn with a rejection KOS.
    *(
        (state, RETRACTED, actor)
        for state in (E, DELIVERED, COMPLETED, NOT_ELIGIBLE, FAILED, DEAD)
        for actor in (Actor.OPERATOR, Actor.REJECTION)
    ),
    # Requeue: analyse again, with the same result UIDs (a queued job's message is sent again).
    *((state, Q, Actor.OPERATOR) for state in (Q, FAILED, DEAD, DELIVERED, COMPLETED, NOT_ELIGIBLE, CANCELLED)),
]
JOB_TRANSITIONS: Mapping[tuple[JobState | None, JobState], frozenset[Actor]] = {
    (source, target): frozenset(actor for s, t, actor in _MOVES if (s, t) == (source, target))
    for source, target, _ in _MOVES
}


class IllegalTransitionError(ValueError):
    """A move the lifecycle table does not allow."""


def check_transition(job_id: int | None, source: JobState | None, target: JobState) -> None:
    """Raise ``IllegalTransitionError`` naming both states unless ``source → target`` is in the table."""
    if (source, target) not in JOB_TRANSITIONS:
        what = "a new job" if job_id is None else f"job {job_id}"
        start = "creation" if source is None else source.value
        raise IllegalTransitionError(f"{what} cannot move from {start} to {target.value}")


def _sources(target: JobState, by: Actor) -> frozenset[JobState]:
    return frozenset(s for (s, t), actors in JOB_TRANSITIONS.items() if t is target and s is not None and by in actors)


def _actors_from(state: JobState) -> set[Actor]:
    return {actor for (s, _), actors in JOB_TRANSITIONS.items() if s is state for actor in actors}


INITIAL_JOB_STATES = frozenset(t for (s, t) in JOB_TRANSITIONS if s is None)
"""The states a job is created in."""
LEASED_STATES = frozenset(s for (s, _), actors in JOB_TRANSITIONS.items() if Actor.LEASE in actors and s is not None)
"""States held under a lease: when it runs out, the sweeper sends the job again (QUEUED, ANALYZING)."""
TERMINAL_JOB_STATES = frozenset(
    state for state in JobState if _actors_from(state) <= {Actor.OPERATOR, Actor.DELIVERY, Actor.REJECTION}
)
"""The job's work is over: only an operator, a rejection note, or the delivery of an object it made moves it on."""
BUSY_JOB_STATES = frozenset(JobState) - TERMINAL_JOB_STATES
"""Work still in progress (QUEUED, ANALYZING, ENCODED): retention leaves such a study's files alone."""
REQUEUEABLE = _sources(JobState.QUEUED, Actor.OPERATOR)
"""States an operator may send back for analysis."""
ANALYSIS_ENDS = frozenset(
    t for (s, t), actors in JOB_TRANSITIONS.items() if s is A and t is not A and Actor.ANALYSIS in actors
)
"""Where an analysis ends (ENCODED, NOT_ELIGIBLE, FAILED): the analysis time is measured up to here."""
SUCCEEDED_JOB_STATES = frozenset(
    s for s in TERMINAL_JOB_STATES if {src for (src, t) in JOB_TRANSITIONS if t is s} == {E}
)
"""Results made and handed over or kept (DELIVERED, COMPLETED): only ever reached from ENCODED."""
