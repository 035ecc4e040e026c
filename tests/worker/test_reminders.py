"""worker.reminders and db.urgency: a critical result nobody acknowledged in time is notified again, once; an
acknowledged one is not; only a critical result can be acknowledged, and the first acknowledgement stands."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from config.outputs import UrgencySettings, WebhookEndpoint
from config.settings import Settings
from db.engine import SessionFactory
from db.models import AuditEvent, Urgency, utcnow
from db.urgency import AcknowledgementError, acknowledge, critical_results, set_urgency
from tests.helpers.clinical_peers import http_peer
from tests.helpers.pipeline import context_for, record
from worker.analyze import analyze_job
from worker.deliver import DeliveryOutcome, deliver_result
from worker.reminders import send_reminders

SECRET = "a-webhook-secret-of-some-length"


def critical_job(tmp_path: Path, session_factory: SessionFactory, rg1: Path, url: str) -> tuple[Settings, int]:
    settings = Settings(
        data_dir=tmp_path / "var",
        urgency=UrgencySettings(critical_thresholds={"Nodule": 0.8}, acknowledge_within_s=600),
        webhooks=[WebhookEndpoint(name="pager", url=url, secret=SECRET)],
    )
    context = context_for(settings, session_factory)
    job_id = record(session_factory, settings, rg1)
    (delivery_id,) = analyze_job(context, job_id).delivery_ids
    assert deliver_result(context, delivery_id) is DeliveryOutcome.SENT
    return settings, job_id


def test_an_unacknowledged_critical_result_is_notified_again_once(
    tmp_path: Path, session_factory: SessionFactory, rg1: Path
) -> None:
    with http_peer() as pager:
        settings, job_id = critical_job(tmp_path, session_factory, rg1, pager.url)
        context = context_for(settings, session_factory)
        queued: list[int] = []
        assert send_reminders(settings, session_factory, queued.append) == [], "not yet due"
        later = utcnow() + timedelta(seconds=601)
        (reminder,) = send_reminders(settings, session_factory, queued.append, later)
        assert queued == [reminder]
        assert deliver_result(context, reminder) is DeliveryOutcome.SENT
        assert send_reminders(settings, session_factory, queued.append, later + timedelta(hours=1)) == [], "once"
    first, second = (json.loads(body) for _, body in pager.received)
    assert (first["event"], second["event"]) == ("result", "reminder")
    assert first["message_id"] != second["message_id"] and second["job_id"] == job_id


def test_an_acknowledged_result_is_not_reminded(tmp_path: Path, session_factory: SessionFactory, rg1: Path) -> None:
    with http_peer() as pager:
        settings, job_id = critical_job(tmp_path, session_factory, rg1, pager.url)
        with session_factory.begin() as s:
            assert acknowledge(s, job_id, "otto") is True
            assert acknowledge(s, job_id, "olga") is False, "the first acknowledgement stands"
        later = utcnow() + timedelta(hours=2)
        assert send_reminders(settings, session_factory, lambda _: None, later) == []
    with session_factory() as s:
        (only,) = critical_results(s)
        assert only.acknowledged_by == "otto" and critical_results(s, unacknowledged_only=True) == []
        audited = [e.detail for e in s.query(AuditEvent).all()]
    assert audited == [f"acknowledged critical result of job {job_id}"]


def test_only_a_critical_result_can_be_acknowledged(tmp_path: Path, session_factory: SessionFactory, rg1: Path) -> None:
    settings = Settings(data_dir=tmp_path / "var")
    job_id = record(session_factory, settings, rg1)
    with session_factory.begin() as s:
        set_urgency(s, job_id, Urgency.ABNORMAL)
    with session_factory.begin() as s, pytest.raises(AcknowledgementError, match="not a critical result"):
        acknowledge(s, job_id, "otto")
