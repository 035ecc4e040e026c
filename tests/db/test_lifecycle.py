"""db.lifecycle and db.jobs.transition_job: one table of legal moves, enforced on SQLite and PostgreSQL, and the state
sets the code uses derived from it."""

from __future__ import annotations

from datetime import timedelta

import pytest

from db import jobs, studies
from db.engine import SessionFactory
from db.lifecycle import (
    ANALYSIS_ENDS,
    BUSY_JOB_STATES,
    INITIAL_JOB_STATES,
    JOB_TRANSITIONS,
    LEASED_STATES,
    REQUEUEABLE,
    SUCCEEDED_JOB_STATES,
    TERMINAL_JOB_STATES,
    IllegalTransitionError,
)
from db.models import JobState, utcnow
from tests.helpers.pipeline import facts

S = JobState


def queued_job(session_factory: SessionFactory) -> int:
    with session_factory.begin() as s:
        study_id = studies.record_instance(s, facts("1.2.3.4"), utcnow() + timedelta(hours=1)).study_id
        return jobs.create_job(s, study_id, "baseline", S.QUEUED)


def test_an_illegal_move_is_refused_with_both_states_named(session_factory: SessionFactory) -> None:
    job_id = queued_job(session_factory)
    refused = pytest.raises(IllegalTransitionError, match=f"job {job_id} cannot move from QUEUED to DELIVERED")
    with refused, session_factory.begin() as s:
        jobs.transition_job(s, job_id, S.DELIVERED, "skipping analysis")
    with session_factory() as s:
        assert jobs.job_state(s, job_id) is S.QUEUED
        assert jobs.job_events(s, job_id) == [(S.QUEUED, None)], "a refused move leaves no event"


def test_legal_moves_go_through_and_a_finished_job_cannot_be_analysed_again(session_factory: SessionFactory) -> None:
    job_id = queued_job(session_factory)
    with session_factory.begin() as s:
        for state in (S.ANALYZING, S.ENCODED, S.DELIVERED):
            jobs.transition_job(s, job_id, state)
    with pytest.raises(IllegalTransitionError, match="from DELIVERED to ANALYZING"), session_factory.begin() as s:
        jobs.transition_job(s, job_id, S.ANALYZING)
    with session_factory() as s:
        assert [state for state, _ in jobs.job_events(s, job_id)] == [S.QUEUED, S.ANALYZING, S.ENCODED, S.DELIVERED]


def test_a_job_cannot_be_created_in_the_middle_of_its_life(session_factory: SessionFactory) -> None:
    with session_factory.begin() as s:
        study_id = studies.record_instance(s, facts("1.2.3.9"), utcnow()).study_id
        with pytest.raises(IllegalTransitionError, match="a new job cannot move from creation to ENCODED"):
            jobs.create_job(s, study_id, "baseline", S.ENCODED)


def test_the_derived_sets() -> None:
    assert {S.QUEUED, S.NOT_ELIGIBLE} == INITIAL_JOB_STATES
    assert {S.QUEUED, S.ANALYZING} == LEASED_STATES
    assert {S.QUEUED, S.ANALYZING, S.ENCODED} == BUSY_JOB_STATES
    assert set(S) - BUSY_JOB_STATES == TERMINAL_JOB_STATES
    assert {S.ENCODED, S.NOT_ELIGIBLE, S.FAILED} == ANALYSIS_ENDS
    assert {S.DELIVERED, S.COMPLETED} == SUCCEEDED_JOB_STATES
    assert {S.QUEUED, S.FAILED, S.DEAD_LETTER, S.DELIVERED, S.COMPLETED, S.NOT_ELIGIBLE, S.CANCELLED} == REQUEUEABLE


def test_every_state_is_reachable_and_every_busy_state_can_finish() -> None:
    reachable, frontier = set(INITIAL_JOB_STATES), list(INITIAL_JOB_STATES)
    while frontier:
        state = frontier.pop()
        for source, target in JOB_TRANSITIONS:
            if source is state and target not in reachable:
                reachable.add(target)
                frontier.append(target)
    assert reachable == set(S)
    for state in BUSY_JOB_STATES:
        assert any(source is state and target in TERMINAL_JOB_STATES for source, target in JOB_TRANSITIONS), state
