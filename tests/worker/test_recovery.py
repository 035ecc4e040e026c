"""worker.recovery on real databases and a real DCMTK destination: deliveries dead-lettered by an outage longer than
the retry window are re-sent when the destination answers C-ECHO again (only when the site enables it), once at most,
audited; one the destination refused is not."""

from __future__ import annotations

from pathlib import Path

from db import deliveries
from db.audit import audit_trail
from db.engine import SessionFactory
from db.jobs import job_state
from db.models import AuditKind, DeliveryState, JobState
from tests.helpers.peers import free_port, received, storescp
from tests.helpers.pipeline import context_for, record, with_pacs
from worker.analyze import analyze_job
from worker.deliver import DeliveryOutcome, deliver_result
from worker.recovery import RECOVERY_ACTOR, resend_on_recovery


def test_dead_letters_go_again_once_when_the_destination_is_back(
    tmp_path: Path, session_factory: SessionFactory, rg1: Path
) -> None:
    port = free_port()
    worker = {"delivery_max_retries": 0, "resend_dead_letters_on_recovery": True}
    settings = with_pacs(tmp_path, port, worker=worker)
    context = context_for(settings, session_factory)
    job_id = record(session_factory, settings, rg1)
    outcome = analyze_job(context, job_id)
    assert [deliver_result(context, d) for d in outcome.delivery_ids] == [DeliveryOutcome.DEAD_LETTER] * 3
    refused, *exhausted = outcome.delivery_ids
    with session_factory.begin() as s:  # as a refusal (0xA700, say) ends: with a DEAD_LETTER attempt
        deliveries.record_delivery_attempt(s, refused, DeliveryState.DEAD_LETTER, "pacs: status 0xA700")
    sent: list[int] = []
    assert resend_on_recovery(settings, session_factory, sent.append) == [], "the destination is still down"
    with storescp(tmp_path / "pacs", port=port):
        switched_off = with_pacs(tmp_path, port, worker={"delivery_max_retries": 0})
        assert resend_on_recovery(switched_off, session_factory, sent.append) == [], "off by default"
        assert resend_on_recovery(settings, session_factory, sent.append) == exhausted
        assert [deliver_result(context, d) for d in sent] == [DeliveryOutcome.SENT] * 2
        assert resend_on_recovery(settings, session_factory, sent.append) == [], "nothing twice"
    assert sent == exhausted and len(received(tmp_path / "pacs")) == 2
    with session_factory() as s:
        assert deliveries.delivery_work(s, refused).state is DeliveryState.DEAD_LETTER, "a refusal waits"
        assert job_state(s, job_id) is JobState.DEAD_LETTER, "one delivery is still dead-lettered"
        actions = [(a.actor, a.detail) for a in audit_trail(s, kinds=[AuditKind.OPERATOR_ACTION])]
    assert sorted(actions) == sorted((RECOVERY_ACTOR, f"re-send delivery {d} to pacs") for d in exhausted)


def test_a_second_failure_after_recovery_waits_for_an_operator(
    tmp_path: Path, session_factory: SessionFactory, rg1: Path
) -> None:
    """The destination answers C-ECHO but the re-sent C-STORE fails again: dead-lettered, and not re-sent again."""
    port = free_port()
    settings = with_pacs(tmp_path, port, worker={"delivery_max_retries": 0, "resend_dead_letters_on_recovery": True})
    context = context_for(settings, session_factory)
    outcome = analyze_job(context, record(session_factory, settings, rg1))
    assert [deliver_result(context, d) for d in outcome.delivery_ids] == [DeliveryOutcome.DEAD_LETTER] * 3
    sent: list[int] = []
    with storescp(tmp_path / "pacs", port=port):
        assert resend_on_recovery(settings, session_factory, sent.append) == list(outcome.delivery_ids)
    assert [deliver_result(context, d) for d in sent] == [DeliveryOutcome.DEAD_LETTER] * 3, "down again"
    with storescp(tmp_path / "pacs", port=port):
        assert resend_on_recovery(settings, session_factory, sent.append) == []
