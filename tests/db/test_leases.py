"""db.leases on SQLite and PostgreSQL: which jobs' leases ran out, which deliveries are stale (and which are not, for a
paused destination), and which queued jobs a batch may take."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update

from db import deliveries, destinations, jobs, leases, studies
from db.engine import SessionFactory
from db.models import Delivery, DeliveryState, JobState, Study, utcnow
from tests.helpers.pipeline import encoded_job_with_deliveries, facts


def job(session_factory: SessionFactory, study: str, lease_in_s: float, stat: bool = False) -> int:
    with session_factory.begin() as s:
        study_id = studies.record_instance(s, facts(f"{study}.1", study), utcnow()).study_id
        s.execute(update(Study).where(Study.id == study_id).values(stat=stat))
        return jobs.create_job(s, study_id, "baseline", JobState.QUEUED, None, utcnow() + timedelta(seconds=lease_in_s))


def test_expired_jobs_are_the_leased_ones_whose_lease_ran_out(session_factory: SessionFactory) -> None:
    fresh = job(session_factory, "1.2.10", 60)
    lost = job(session_factory, "1.2.11", -5)
    dead_worker = job(session_factory, "1.2.12", 60)
    finished = job(session_factory, "1.2.13", -5)
    with session_factory.begin() as s:
        jobs.start_attempt(s, dead_worker, utcnow() - timedelta(seconds=1), max_attempts=3)
        jobs.transition_job(s, finished, JobState.CANCELLED)
    with session_factory.begin() as s:
        expired = leases.expired_jobs(s, utcnow())
    assert [(e.job_id, e.state, e.attempts) for e in expired] == [
        (lost, JobState.QUEUED, 0),
        (dead_worker, JobState.ANALYZING, 1),
    ], "oldest lease first; a fresh lease and a cancelled job are left alone"
    assert fresh not in {e.job_id for e in expired}


def test_stale_deliveries_are_sent_again_unless_their_destination_is_paused(session_factory: SessionFactory) -> None:
    _, (untried, stored, to_paused, fresh), _ = encoded_job_with_deliveries(session_factory, 4, ("pacs",))
    now = utcnow()
    with session_factory.begin() as s:
        deliveries.record_delivery_attempt(s, fresh, DeliveryState.PENDING, "refused")  # tried, within the lease
        s.execute(update(Delivery).where(Delivery.id == stored).values(state=DeliveryState.COMMIT_PENDING))
        s.execute(update(Delivery).where(Delivery.id == to_paused).values(destination_name="archive"))
        destinations.set_paused(s, "archive", True, "otto")
        s.execute(
            update(Delivery)
            .where(Delivery.id.in_([untried, stored, to_paused]))
            .values(updated_at=now - timedelta(minutes=10))
        )
    with session_factory.begin() as s:
        # Untouched for 10 min: stale after a 5 min queue lease for a never-tried one, not yet after a 20 min lease.
        resent = leases.stale_deliveries(s, now - timedelta(minutes=20), now - timedelta(minutes=5))
    assert resent == [untried]
    with session_factory.begin() as s:
        resent = leases.stale_deliveries(s, now - timedelta(minutes=5), now - timedelta(minutes=5))
    assert resent == [stored], "a commitment report that never came, once the delivery lease is over"
    with session_factory() as s:
        row = s.get(Delivery, stored)
        assert row is not None and row.state is DeliveryState.PENDING
        assert row.last_error == "no storage commitment report in time"


def test_batch_companions_are_never_tried_jobs_for_the_same_detector_stat_first(
    session_factory: SessionFactory,
) -> None:
    routine = job(session_factory, "1.2.20", 60)
    retried = job(session_factory, "1.2.21", 60)
    urgent = job(session_factory, "1.2.22", 60, stat=True)
    later = job(session_factory, "1.2.23", 60)
    with session_factory.begin() as s:
        jobs.start_attempt(s, retried, utcnow() + timedelta(minutes=5), max_attempts=3)
        jobs.transition_job(s, retried, JobState.QUEUED, lease_expires_at=utcnow() + timedelta(minutes=5))
    with session_factory() as s:
        assert leases.queued_jobs(s, "baseline", 10, exclude=set()) == [urgent, routine, later]
        assert leases.queued_jobs(s, "baseline", 1, exclude={urgent}) == [routine]
        assert leases.queued_jobs(s, "xrv:all", 10, exclude=set()) == []
