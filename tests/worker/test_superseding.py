"""worker.analyze and db.results when a study changes after its result was sent: a late lateral gets a new SR that
supersedes the first (never itself), the first job keeps its rows, marked superseded; a re-run of identical input
changes nothing; with retention's purge, the follow-up is not analysed and says why, and the first result stands."""

from __future__ import annotations

import copy
import time
from datetime import timedelta
from pathlib import Path

import pydicom
from sqlalchemy import select

from config.records import RetentionSettings
from config.settings import ScpSettings
from dashboard.metrics_queries import metrics_snapshot
from db import jobs, studies
from db.engine import SessionFactory
from db.models import JobState, ResultKind, ResultObject, utcnow
from dicom_node.validation import Status
from models.baseline import VERSION
from tests.helpers.encode_cases import derived_uid
from tests.helpers.peers import received, storescp, storescu
from tests.helpers.pipeline import analyse_and_deliver, context_for, record, with_pacs
from tests.helpers.scp import scp_node, store, wait_for
from worker.analyze import PURGED_REASON
from worker.retention import purge_spool

SR_CLASS = "1.2.840.10008.5.1.4.1.1.88.34"
NODE_SCP = ScpSettings(host="127.0.0.1", port=0, completion_debounce_s=0, completion_poll_s=0.05)


def lateral_of(rg1: Path, directory: Path) -> Path:
    """RG1's study, one more image: View Position LL and its own SOP Instance UID, so the rules see a lateral."""
    ds = copy.deepcopy(pydicom.dcmread(rg1))
    ds.ViewPosition = "LL"
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = derived_uid("late-lateral")
    ds.InstanceNumber = 2
    path = directory / "lateral.dcm"
    ds.save_as(path, enforce_file_format=True)
    return path


def srs(session_factory: SessionFactory) -> list[ResultObject]:
    with session_factory() as s:
        return list(s.scalars(select(ResultObject).where(ResultObject.kind == ResultKind.SR).order_by(ResultObject.id)))


def test_a_late_lateral_gets_a_new_sr_that_supersedes_the_first(
    tmp_path: Path, session_factory: SessionFactory, rg1: Path
) -> None:
    """The PA, delivered; then a real lateral (RG1 with View Position LL and its own SOP Instance UID) in a second
    association."""
    with storescp(tmp_path / "pacs") as port:
        settings = with_pacs(tmp_path, port).model_copy(update={"scp": NODE_SCP})
        context = context_for(settings, session_factory)
        with scp_node(settings, session_factory) as (running, enqueued):
            assert storescu(rg1, running.port).returncode == 0
            wait_for(lambda: len(enqueued) == 1)
            assert analyse_and_deliver(context, enqueued[0]) is JobState.DELIVERED
            assert storescu(lateral_of(rg1, tmp_path), running.port).returncode == 0
            wait_for(lambda: len(enqueued) == 2)
            assert analyse_and_deliver(context, enqueued[1]) is JobState.DELIVERED
        first_job, second_job = enqueued
        at_pacs = received(tmp_path / "pacs")
    first, second = srs(session_factory)
    assert (first.job_id, second.job_id) == (first_job, second_job), "each SR stays with its own job"
    with session_factory() as s:
        job = jobs.get_job(s, second_job)
        assert (job.detector_version, job.weights_sha256) == (VERSION, None), "the job names the model that made it"
    assert second.sop_instance_uid != first.sop_instance_uid
    assert first.superseded_by_id == second.id and first.superseded_at is not None
    assert second.superseded_by_id is None
    delivered_srs = {str(ds.SOPInstanceUID): ds for ds in at_pacs if ds.SOPClassUID == SR_CLASS}
    assert set(delivered_srs) == {first.sop_instance_uid, second.sop_instance_uid}, "the destination holds both"
    predecessors = [
        item.ReferencedSOPInstanceUID
        for study in delivered_srs[second.sop_instance_uid].PredecessorDocumentsSequence
        for series in study.ReferencedSeriesSequence
        for item in series.ReferencedSOPSequence
    ]
    assert predecessors == [first.sop_instance_uid], "only the earlier SR, never itself"
    assert "PredecessorDocumentsSequence" not in delivered_srs[first.sop_instance_uid]
    assert len(at_pacs) == 4, "the PA's overlay and GSPS are unchanged and not sent again"
    with session_factory() as s:
        (detail,) = [d for state, d in jobs.job_events(s, second_job) if state is JobState.ENCODED]
    assert "2 objects unchanged from an earlier job" in (detail or "")
    with session_factory() as s:
        last_event = jobs.job_events(s, first_job)[-1]
        assert metrics_snapshot(s).superseded_results == 1, "counted for /metrics"
    assert last_event == (JobState.DELIVERED, f"SR superseded by job {second_job}'s SR"), "on the first job's timeline"


def test_analysing_the_same_study_again_changes_nothing(
    tmp_path: Path, session_factory: SessionFactory, rg1: Path
) -> None:
    with storescp(tmp_path / "pacs") as port:
        settings = with_pacs(tmp_path, port)
        context = context_for(settings, session_factory)
        job_id = record(session_factory, settings, rg1)
        assert analyse_and_deliver(context, job_id) is JobState.DELIVERED
        with session_factory.begin() as s:
            jobs.transition_job(s, job_id, JobState.QUEUED, "requeued")
        assert analyse_and_deliver(context, job_id) is JobState.DELIVERED
        assert len(received(tmp_path / "pacs")) == 3
    (only,) = srs(session_factory)
    assert only.superseded_by_id is None


def test_after_a_purge_a_late_image_is_not_analysed_and_the_first_result_stands(
    tmp_path: Path, session_factory: SessionFactory, rg1: Path
) -> None:
    with storescp(tmp_path / "pacs") as port:
        settings = with_pacs(tmp_path, port, retention=RetentionSettings(purge_after_delivery=True))
        context = context_for(settings, session_factory)
        first_job = record(session_factory, settings, rg1)
        assert analyse_and_deliver(context, first_job) is JobState.DELIVERED
        with session_factory.begin() as s:
            studies.claim_due_studies(s, utcnow() + timedelta(hours=1))  # what completion did when it made the job
        assert purge_spool(session_factory, settings.retention) == 1
        second_job = record(session_factory, settings, lateral_of(rg1, tmp_path))
        assert analyse_and_deliver(context, second_job) is JobState.NOT_ELIGIBLE
        assert len(received(tmp_path / "pacs")) == 3, "nothing new is sent"
    with session_factory() as s:
        assert jobs.job_summary(s, second_job).reason == PURGED_REASON
    (first,) = srs(session_factory)
    assert first.superseded_by_id is None, "the first result stands"


def test_a_corrected_image_under_the_same_uid_reaches_the_destination_and_supersedes(
    tmp_path: Path, session_factory: SessionFactory, rg1_dataset: pydicom.Dataset
) -> None:
    with storescp(tmp_path / "pacs") as port:
        settings = with_pacs(tmp_path, port).model_copy(update={"scp": NODE_SCP})
        context = context_for(settings, session_factory)
        with scp_node(settings, session_factory) as (running, enqueued):
            assert store(running.port, rg1_dataset) == (Status.SUCCESS, "")
            wait_for(lambda: len(enqueued) == 1)
            assert analyse_and_deliver(context, enqueued[0]) is JobState.DELIVERED
            corrected = copy.deepcopy(rg1_dataset)
            corrected.PatientName = "Corrected^Name"
            assert store(running.port, corrected) == (Status.SUCCESS, "")
            wait_for(lambda: len(enqueued) == 2)
            assert analyse_and_deliver(context, enqueued[1]) is JobState.DELIVERED
            assert store(running.port, copy.deepcopy(corrected)) == (Status.SUCCESS, "")
            time.sleep(0.5)
            assert len(enqueued) == 2, "an identical re-send makes no job"
        at_pacs = received(tmp_path / "pacs")
    assert len(at_pacs) == 6, "a new SR, SC and GSPS: the corrected image's results are new objects"
    first, second = srs(session_factory)
    assert first.superseded_by_id == second.id
    corrected_objects = [ds for ds in at_pacs if ds.PatientName == "Corrected^Name"]
    assert len(corrected_objects) == 3, "the new SR, SC and GSPS carry the corrected header"
    (new_sr,) = [ds for ds in at_pacs if ds.SOPInstanceUID == second.sop_instance_uid]
    assert new_sr.PatientName == "Corrected^Name"
    predecessor = new_sr.PredecessorDocumentsSequence[0].ReferencedSeriesSequence[0].ReferencedSOPSequence[0]
    assert predecessor.ReferencedSOPInstanceUID == first.sop_instance_uid
    with session_factory() as s:
        assert len(jobs.list_jobs(s)) == 2
