"""worker.early_analysis, worker.findings_cache and dicom_node.stored_notices: images analysed while their study waits
for completion; the job then takes what was prepared, and records the same findings and objects as without it."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import numpy as np
import pydicom
from sqlalchemy import update

from config.settings import Settings, WorkerSettings
from db import jobs, results, studies
from db.engine import SessionFactory
from db.models import Instance, JobState
from dicom_node.scp import start_node
from models.imaging import DecodedImage
from models.protocol import ImageResult
from tests.helpers.pipeline import context_for, record
from tests.helpers.scp import store, wait_for
from worker.analyze import analyze_job
from worker.context import WorkerContext
from worker.early_analysis import analyse_early
from worker.findings_cache import FindingsCache


def _context(tmp_path: Path, session_factory: SessionFactory, early_mb: int = 256) -> WorkerContext:
    settings = Settings(data_dir=tmp_path / "var", worker=WorkerSettings(early_analysis_mb=early_mb))
    return dataclasses.replace(
        context_for(settings, session_factory), findings=FindingsCache(settings.worker.early_analysis_mb * 2**20)
    )


def _study_before_completion(context: WorkerContext, source: Path) -> int:
    """The study as the SCP leaves it before completion: recorded, with no job yet."""
    job_id = record(context.session_factory, context.settings, source)
    with context.session_factory.begin() as s:
        study_id = jobs.job_summary(s, job_id).study_id
        jobs.transition_job(s, job_id, JobState.CANCELLED, "made again below, as completion would")
    return study_id


def _complete(context: WorkerContext, study_id: int) -> int:
    with context.session_factory.begin() as s:
        return jobs.create_job(s, study_id, "baseline", JobState.QUEUED)


def _recorded(context: WorkerContext, job_id: int) -> tuple[list[object], list[str]]:
    with context.session_factory() as s:
        findings = [dataclasses.replace(f, instance_id=0) for f in results.job_findings(s, job_id)]
        uids = sorted(r.sop_instance_uid for r in results.job_results(s, job_id))
    return findings, uids


def test_the_job_takes_the_prepared_findings_and_records_what_it_would_have(
    tmp_path: Path, session_factory: SessionFactory, rg1: Path
) -> None:
    early = _context(tmp_path / "early", session_factory)
    study_id = _study_before_completion(early, rg1)
    assert analyse_early(early, study_id) == 1
    assert analyse_early(early, study_id) == 0, "already prepared"
    job_id = _complete(early, study_id)
    assert analyze_job(early, job_id).state is JobState.COMPLETED
    assert (early.findings.hits, early.findings.misses) == (1, 0), "the job used the entry, and did not detect again"

    # The same study where nothing was prepared: the job analyses it itself, with the same outcome.
    late = _context(tmp_path / "late", session_factory, early_mb=0)
    with late.session_factory.begin() as s:
        jobs.transition_job(s, job_id, JobState.QUEUED, "requeued")
    again = analyze_job(late, job_id)
    assert again.state is JobState.COMPLETED and late.findings.hits == 0
    findings, uids = _recorded(early, job_id)
    assert findings and _recorded(late, job_id) == (findings, uids)


def test_a_study_whose_job_waits_is_left_to_the_job(tmp_path: Path, session_factory: SessionFactory, rg1: Path) -> None:
    context = _context(tmp_path, session_factory)
    study_id = _study_before_completion(context, rg1)
    _complete(context, study_id)
    assert analyse_early(context, study_id) == 0 and len(context.findings) == 0


def test_off_when_it_has_no_memory(tmp_path: Path, session_factory: SessionFactory, rg1: Path) -> None:
    context = _context(tmp_path, session_factory, early_mb=0)
    assert analyse_early(context, _study_before_completion(context, rg1)) == 0


def test_a_corrected_image_is_analysed_again(tmp_path: Path, session_factory: SessionFactory, rg1: Path) -> None:
    context = _context(tmp_path, session_factory)
    study_id = _study_before_completion(context, rg1)
    assert analyse_early(context, study_id) == 1
    with context.session_factory.begin() as s:
        instance = studies.study_facts(s, study_id).instances[0]
        s.execute(update(Instance).where(Instance.id == instance.instance_id).values(revision=instance.revision + 1))
    assert analyse_early(context, study_id) == 1, "a new revision is a new entry"


def _entry(pixels: int) -> tuple[ImageResult, DecodedImage]:
    return ImageResult(0.1, ()), DecodedImage(np.zeros(pixels, dtype=np.float32), None)


def test_the_cache_keeps_to_its_budget_least_recently_used_out_first() -> None:
    cache = FindingsCache(budget_bytes=3 * 4000)  # three entries of 1,000 float32 pixels
    for n in range(3):
        cache.put((n, 1, "model", None), *_entry(1000))
    assert cache.get((0, 1, "model", None)) is not None  # 0 is now the most recently used
    cache.put((3, 1, "model", None), *_entry(1000))
    assert (1, 1, "model", None) not in cache and (0, 1, "model", None) in cache and len(cache) == 3
    cache.put((4, 1, "model", None), *_entry(4000))
    assert (4, 1, "model", None) not in cache and len(cache) == 3, "larger than the whole budget: not kept"


def test_the_scp_tells_of_each_study_stored_into(tmp_path: Path, session_factory: SessionFactory, rg1: Path) -> None:
    told: list[int] = []
    settings = Settings(data_dir=tmp_path / "var")
    running = start_node(settings, session_factory, lambda job_id: None, told.append)
    try:
        assert store(running.port, rg1)[0] == 0x0000
        broken = pydicom.dcmread(rg1)
        del broken.StudyInstanceUID  # refused: nothing stored, nothing told
        assert store(running.port, broken)[0] != 0x0000
        wait_for(lambda: len(told) == 1)
        time.sleep(0.2)
    finally:
        running.stop()
    with session_factory() as s:
        location = studies.instance_location(s, str(pydicom.dcmread(rg1, stop_before_pixels=True).SOPInstanceUID))
    assert location is not None and told == [location.study_id]
