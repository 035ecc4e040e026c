"""worker.analyze (each image's objects recorded as soon as they are encoded), worker.announce and
worker.deliver.deliver_conversation (the conversation takes the study's later objects as they are recorded): a
study's first objects reach the destination while its SR is still being built, over the one association."""

from __future__ import annotations

from pathlib import Path

import pydicom
import pytest
from pydicom import uid

from config.outputs import Hl7Endpoint
from db import conversations, deliveries, jobs
from db.engine import SessionFactory
from db.models import Channel, DeliveryState, JobState
from tests.helpers.encode_cases import second_view
from tests.helpers.peers import free_port
from tests.helpers.pipeline import before_the_sr, context_for, delivering, record, with_pacs
from tests.helpers.scp import Stored, recording_scp, wait_for
from worker.analyze import analyze_job
from worker.announce import Announcer
from worker.deliver import DeliveryOutcome

SR = str(uid.Comprehensive3DSRStorage)
SC = str(uid.SecondaryCaptureImageStorage)
GSPS = str(uid.GrayscaleSoftcopyPresentationStateStorage)
REFUSED = 0xA900  # the destination understood and refused: a dead letter at once


def _sr_built_once(stored: list[Stored], objects: int, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Make the SR's encoding wait until ``objects`` of the images' objects are at the destination (it fails if
    they do not come: they would only go after the SR); returns how many the destination held when it began."""
    seen: list[int] = []

    def once_the_images_arrived() -> None:
        wait_for(lambda: len(stored) >= objects, timeout_s=30)
        seen.append(len(stored))

    before_the_sr(monkeypatch, once_the_images_arrived)
    return seen


@pytest.mark.parametrize("images", [1, 2])
def test_each_images_objects_are_sent_before_the_sr_is_built_over_one_association(
    tmp_path: Path, session_factory: SessionFactory, rg1: Path, images: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    sources = [rg1]
    if images == 2:
        sources.append(tmp_path / "second.dcm")
        second_view(pydicom.dcmread(rg1)).save_as(sources[1], enforce_file_format=True)
    with recording_scp() as (port, stored):
        settings = with_pacs(tmp_path, port)
        context = context_for(settings, session_factory)
        job_id = record(session_factory, settings, sources)
        seen = _sr_built_once(stored, 2 * images, monkeypatch)
        with delivering(context) as (announce, outcomes):
            outcome = analyze_job(context, job_id, announce)
            announce(outcome.delivery_ids)  # what the analysis task does at the end: no second message
        assert len(set(announce.announced)) == 2 * images + 1
        assert outcomes == [DeliveryOutcome.SENT], "one conversation, one message"
    assert seen == [2 * images], "the images' objects were at the destination when the SR was built"
    assert [(s.association, s.sop_class_uid) for s in stored] == [(1, SC), (1, GSPS)] * images + [(1, SR)]
    with session_factory() as s:
        assert jobs.job_state(s, job_id) is JobState.DELIVERED
        assert {deliveries.delivery_work(s, d).state for d in announce.announced} == {DeliveryState.SENT}


def test_an_image_object_refused_while_the_study_is_analysed_leaves_the_job_dead_lettered_at_its_end(
    tmp_path: Path, session_factory: SessionFactory, rg1: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The refusal comes while the job is ANALYZING: the analysis still ends (ENCODED, its SR sent), and then the
    job is DEAD_LETTER for the refused SC, not before."""
    with recording_scp(lambda sop_class: REFUSED if sop_class == SC else 0x0000) as (port, stored):
        settings = with_pacs(tmp_path, port)
        context = context_for(settings, session_factory)
        job_id = record(session_factory, settings, rg1)
        _sr_built_once(stored, 1, monkeypatch)  # the GSPS: the SC is refused
        with delivering(context) as (announce, outcomes):
            outcome = analyze_job(context, job_id, announce)
            announce(outcome.delivery_ids)
        assert outcome.state is JobState.ENCODED
        assert outcomes == [DeliveryOutcome.DEAD_LETTER]
    assert [s.sop_class_uid for s in stored] == [GSPS, SR]
    with session_factory() as s:
        assert jobs.job_state(s, job_id) is JobState.DEAD_LETTER


def test_a_conversation_already_begun_gets_no_second_message_but_other_channels_do(
    tmp_path: Path, session_factory: SessionFactory, rg1: Path
) -> None:
    ris = Hl7Endpoint(name="ris", host="127.0.0.1", port=free_port(), timeout_s=5)
    settings = with_pacs(tmp_path, free_port(), hl7=[ris])
    context = context_for(settings, session_factory)
    first = analyze_job(context, record(session_factory, settings, rg1))
    with session_factory() as s:
        channels = {d: deliveries.delivery_work(s, d).channel for d in first.delivery_ids}
        (message,) = [d for d, channel in channels.items() if channel is Channel.HL7]
        image, other, sr = sorted(d for d, channel in channels.items() if channel is Channel.DICOM)
        assert conversations.conversation_leaders(s, first.delivery_ids) == sorted([image, message])
        # The images' objects were announced: the SR goes with their conversation, the HL7 message on its own.
        assert conversations.conversation_leaders(s, [sr, message], announced=[image, other]) == [message]
        assert conversations.conversation_leaders(s, first.delivery_ids, announced=[image]) == [message]
        assert conversations.conversation_leaders(s, first.delivery_ids, announced=[image, message]) == []


def test_a_broker_failing_while_the_study_is_analysed_only_delays_the_message(
    tmp_path: Path, session_factory: SessionFactory, rg1: Path
) -> None:
    settings = with_pacs(tmp_path, free_port())
    context = context_for(settings, session_factory)
    job_id = record(session_factory, settings, rg1)
    sent: list[int] = []
    down = [True]

    def send(delivery_id: int) -> None:
        if down.pop() if down else False:
            raise ConnectionError("broker down")
        sent.append(delivery_id)

    announce = Announcer(session_factory, send)
    outcome = analyze_job(context, job_id, announce)
    assert outcome.state is JobState.ENCODED and sent == [], "the analysis ended all the same"
    announce(outcome.delivery_ids)
    assert sent == [min(outcome.delivery_ids)], "the conversation's message went at the end"
