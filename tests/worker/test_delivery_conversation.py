"""worker.deliver.deliver_conversation and db.conversations.conversation_leaders: a study's objects go to a DICOM
destination over one association, from one task; each object keeps its own delivery row, retry and outcome."""

from __future__ import annotations

from pathlib import Path

from pydicom import uid

from config.outputs import Destination
from config.settings import Settings
from db import conversations, deliveries, jobs
from db.engine import SessionFactory
from db.models import DeliveryState, JobState
from tests.helpers.peers import free_port
from tests.helpers.pipeline import context_for, record, with_pacs
from tests.helpers.scp import recording_scp
from worker.analyze import analyze_job
from worker.deliver import DeliveryOutcome, deliver_conversation

GSPS = str(uid.GrayscaleSoftcopyPresentationStateStorage)


def _states(session_factory: SessionFactory, delivery_ids: tuple[int, ...]) -> list[DeliveryState]:
    with session_factory() as s:
        return [deliveries.delivery_work(s, d).state for d in delivery_ids]


def test_a_studys_objects_go_over_one_association_from_one_message(
    tmp_path: Path, session_factory: SessionFactory, rg1: Path
) -> None:
    with recording_scp() as (port, stored):
        settings = with_pacs(tmp_path, port)
        context = context_for(settings, session_factory)
        job_id = record(session_factory, settings, rg1)
        outcome = analyze_job(context, job_id)
        with session_factory() as s:
            leaders = conversations.conversation_leaders(s, outcome.delivery_ids)
        assert len(outcome.delivery_ids) == 3 and leaders == [min(outcome.delivery_ids)]
        assert deliver_conversation(context, leaders[0]) is DeliveryOutcome.SENT
        # A duplicate message for any of them (the sweeper's, say) sends nothing again.
        assert {deliver_conversation(context, d) for d in outcome.delivery_ids} == {DeliveryOutcome.ALREADY_SENT}
    assert [s.association for s in stored] == [1, 1, 1]
    assert len({s.sop_instance_uid for s in stored}) == 3
    assert _states(session_factory, outcome.delivery_ids) == [DeliveryState.SENT] * 3
    with session_factory() as s:
        assert jobs.job_state(s, job_id) is JobState.DELIVERED


def test_an_object_refused_for_now_is_retried_alone_while_the_others_are_sent(
    tmp_path: Path, session_factory: SessionFactory, rg1: Path
) -> None:
    busy = {"gsps": True}

    def answer(sop_class: str) -> int:
        return 0xA700 if sop_class == GSPS and busy["gsps"] else 0x0000  # out of resources: worth retrying

    with recording_scp(answer) as (port, stored):
        settings = with_pacs(tmp_path, port)
        context = context_for(settings, session_factory)
        outcome = analyze_job(context, record(session_factory, settings, rg1))
        leader = min(outcome.delivery_ids)
        assert deliver_conversation(context, leader) is DeliveryOutcome.RETRY, "the task must come back"
        assert sorted(_states(session_factory, outcome.delivery_ids)).count(DeliveryState.SENT) == 2
        with session_factory() as s:
            assert conversations.conversation_retry_due_in(s, leader) > 0, "the retry waits for the GSPS's backoff"
        with session_factory.begin() as s:
            deliveries.due_now(s, list(outcome.delivery_ids))
        busy["gsps"] = False
        assert deliver_conversation(context, leader) is DeliveryOutcome.SENT
    assert [(s.association, s.sop_class_uid == GSPS) for s in stored] == [(1, False), (1, False), (2, True)]
    assert _states(session_factory, outcome.delivery_ids) == [DeliveryState.SENT] * 3


def test_objects_that_failed_together_are_due_together(
    tmp_path: Path, session_factory: SessionFactory, rg1: Path
) -> None:
    settings = with_pacs(tmp_path, free_port())
    context = context_for(settings, session_factory)
    outcome = analyze_job(context, record(session_factory, settings, rg1))
    assert deliver_conversation(context, min(outcome.delivery_ids)) is DeliveryOutcome.RETRY
    with session_factory() as s:
        works = [deliveries.delivery_work(s, d) for d in outcome.delivery_ids]
    assert {w.attempts for w in works} == {1} and len({w.retry_at for w in works}) == 1, "one backoff for all three"


def test_one_message_per_job_and_destination(tmp_path: Path, session_factory: SessionFactory, rg1: Path) -> None:
    second = Destination(name="archive", ae_title="ARCHIVE", host="127.0.0.1", port=free_port())
    settings = with_pacs(tmp_path, free_port())
    settings = Settings(data_dir=settings.data_dir, destinations=[*settings.destinations, second])
    context = context_for(settings, session_factory)
    outcome = analyze_job(context, record(session_factory, settings, rg1))
    with session_factory() as s:
        leaders = conversations.conversation_leaders(s, outcome.delivery_ids)
        names = sorted(deliveries.delivery_work(s, d).destination_name for d in leaders)
    assert len(outcome.delivery_ids) == 6 and names == ["archive", "pacs"]


def test_each_object_is_recorded_before_the_next_one_goes(
    tmp_path: Path, session_factory: SessionFactory, rg1: Path
) -> None:
    """A worker killed mid-conversation leaves at most the object in flight stored but unrecorded (sent again, the
    same bytes): the ones before it are already SENT in the database."""
    delivery_ids: list[int] = []
    sent_before: list[int] = []

    def answer(sop_class: str) -> int:
        sent_before.append(_states(session_factory, tuple(delivery_ids)).count(DeliveryState.SENT))
        return 0x0000

    with recording_scp(answer) as (port, stored):
        settings = with_pacs(tmp_path, port)
        context = context_for(settings, session_factory)
        outcome = analyze_job(context, record(session_factory, settings, rg1))
        delivery_ids.extend(outcome.delivery_ids)
        assert deliver_conversation(context, min(delivery_ids)) is DeliveryOutcome.SENT
    assert sent_before == [0, 1, 2] and len(stored) == 3
