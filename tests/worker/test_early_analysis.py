"""worker.early_analysis, worker.findings_cache, worker.shared_findings and dicom_node.stored_notices: images analysed
while their study waits for completion; the job then takes what was prepared, on whichever analysis worker it runs,
and records the same findings and objects as without it."""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import time
from pathlib import Path

import numpy as np
import pydicom
import pytest
from sqlalchemy import update

from config.settings import Settings, WorkerSettings
from db import jobs, results, studies
from db.engine import SessionFactory
from db.models import Instance, JobState
from dicom_node.scp import start_node
from models.imaging import DecodedImage
from models.protocol import Box, Finding, ImageResult
from tests.helpers.pipeline import context_for, record
from tests.helpers.scp import store, wait_for
from worker.analyze import analyze_job
from worker.context import WorkerContext, findings_cache
from worker.early_analysis import analyse_early
from worker.findings_cache import FindingsCache
from worker.shared_findings import ENTRY_MAX_AGE_S, SharedFindings, node_findings


def _context(tmp_path: Path, session_factory: SessionFactory, early_mb: int = 256) -> WorkerContext:
    """An analysis worker process's context; two made with the same ``tmp_path`` are two workers of one node."""
    settings = Settings(data_dir=tmp_path / "var", worker=WorkerSettings(early_analysis_mb=early_mb))
    return dataclasses.replace(context_for(settings, session_factory), findings=findings_cache(settings))


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


@pytest.mark.parametrize("where", ["the same worker", "another worker"])
def test_the_job_takes_the_prepared_findings_and_records_what_it_would_have(
    where: str, tmp_path: Path, session_factory: SessionFactory, rg1: Path
) -> None:
    """The job on the worker that analysed early, or on another of the node's analysis workers (one per core on the
    CPU): two contexts with one data directory are two workers of one node."""
    early = _context(tmp_path, session_factory)
    worker = early if where == "the same worker" else _context(tmp_path, session_factory)
    study_id = _study_before_completion(early, rg1)
    assert analyse_early(early, study_id) == 1
    assert analyse_early(worker, study_id) == 0, "already prepared"
    job_id = _complete(worker, study_id)
    assert analyze_job(worker, job_id).state is JobState.COMPLETED
    assert (worker.findings.hits, worker.findings.misses) == (1, 0), "the job used the entry, and did not detect again"
    assert not list(early.settings.early_analysis_dir.iterdir()), "the job removed the shared copy"

    # The same study where nothing was prepared: the job analyses it itself, with the same outcome.
    late = _context(tmp_path / "late", session_factory, early_mb=0)
    with late.session_factory.begin() as s:
        jobs.transition_job(s, job_id, JobState.QUEUED, "requeued")
    again = analyze_job(late, job_id)
    assert again.state is JobState.COMPLETED and late.findings.hits == 0
    findings, uids = _recorded(worker, job_id)
    assert findings and _recorded(late, job_id) == (findings, uids)


def test_a_spooled_file_written_anew_is_analysed_again(
    tmp_path: Path, session_factory: SessionFactory, rg1: Path
) -> None:
    """Ids and revisions restart with a new database beside an old spool: the key also holds the file itself."""
    first, second = _context(tmp_path, session_factory), _context(tmp_path, session_factory)
    study_id = _study_before_completion(first, rg1)
    assert analyse_early(first, study_id) == 1
    with first.session_factory() as s:
        spooled = studies.study_facts(s, study_id).instances[0].spool_path
    stat = spooled.stat()
    os.utime(spooled, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    assert analyse_early(second, study_id) == 1, "another file: the old entry is not taken for it"


def _result() -> ImageResult:
    found = (Finding("nodule", 0.8125, Box(1.5, 2.0, 30.25, 40.0)), Finding("effusion", 0.71, None))
    heat = np.full((4, 5), 0.5, np.float32)
    return ImageResult(0.9, found, heatmap=heat, candidates=(*found, Finding("pneumothorax", 0.1, None)))


def test_a_shared_entry_reads_back_as_it_was_written(tmp_path: Path) -> None:
    shared = SharedFindings(tmp_path / "early", budget_bytes=2**20)
    pixels = np.arange(200, dtype=np.float32).reshape(10, 20) / 200
    shared.save((1, 1, "m", None, "f"), _result(), DecodedImage(pixels, (0.143, 0.15)))
    (file,) = (tmp_path / "early").iterdir()
    assert re.fullmatch(r"[0-9a-f]{64}\.npz", file.name), "named by a digest: no identifier in a file name"
    assert (tmp_path / "early").stat().st_mode & 0o077 == 0, "a folder of image pixels only the node reads"
    taken = shared.take((1, 1, "m", None, "f"))
    assert taken is not None
    result, decoded = taken
    assert result == _result() and result.candidates == _result().candidates
    assert result.heatmap is not None and np.array_equal(result.heatmap, np.full((4, 5), 0.5, np.float32))
    assert np.array_equal(decoded.pixels, pixels) and decoded.pixels.dtype == np.float32
    assert decoded.spacing_mm == (0.143, 0.15)
    assert shared.take((1, 1, "m", None, "f")) is None, "taken once"


@pytest.mark.parametrize("damage", ["cut short", "malformed numbers"])
def test_an_unreadable_shared_entry_is_a_miss_and_is_removed(damage: str, tmp_path: Path) -> None:
    shared = SharedFindings(tmp_path / "early", budget_bytes=2**20)
    key = (1, 1, "m", None, "f")
    shared.save(key, *_entry(1000))
    if damage == "cut short":
        shared.path(key).write_bytes(b"PK\x03\x04 cut short")
    else:  # a readable file whose findings are not what the writer writes
        meta = '{"abnormality_score": 0.1, "findings": [["Nodule", 0.5, [1, 2]]], "candidates": [], "spacing_mm": null}'
        with shared.path(key).open("wb") as out:
            np.savez(out, pixels=np.zeros(4, np.float32), meta=np.array(meta))
    assert shared.take(key) is None
    assert not list((tmp_path / "early").iterdir())


def test_shared_entries_keep_to_their_budget_and_age(tmp_path: Path) -> None:
    shared = SharedFindings(tmp_path / "early", budget_bytes=3 * 4000 + 3 * 1000)  # three entries and their headers
    for n in range(3):
        shared.save((n, 1, "m", None, "f"), *_entry(1000))
        old = time.time() - 10 + n
        os.utime(shared.path((n, 1, "m", None, "f")), (old, old))
    shared.save((3, 1, "m", None, "f"), *_entry(1000))
    assert [(n, 1, "m", None, "f") in shared for n in range(4)] == [False, True, True, True], "oldest out first"
    stale = time.time() - ENTRY_MAX_AGE_S - 1
    os.utime(shared.path((1, 1, "m", None, "f")), (stale, stale))
    leftover = tmp_path / "early" / ".entry.123.part"
    leftover.write_bytes(b"half")
    os.utime(leftover, (stale, stale))
    shared.save((4, 1, "m", None, "f"), *_entry(10))
    assert (1, 1, "m", None, "f") not in shared and not leftover.exists(), "past their age"
    shared.save((5, 1, "m", None, "f"), *_entry(10_000))
    assert (5, 1, "m", None, "f") not in shared, "larger than the whole budget: not kept"


def test_eviction_without_a_save_removes_entries_past_their_hour(tmp_path: Path) -> None:
    """What ``cxr sweeper``'s housekeeping calls on a node that went quiet; also fine where the folder was never
    made."""
    settings = Settings(data_dir=tmp_path / "var")
    node_findings(settings).evict()
    node_findings(settings).save((1, 1, "m", None, "f"), *_entry(10))
    stale = time.time() - ENTRY_MAX_AGE_S - 1
    os.utime(node_findings(settings).path((1, 1, "m", None, "f")), (stale, stale))
    node_findings(settings).evict()
    assert not list(settings.early_analysis_dir.iterdir())


def test_a_folder_that_cannot_be_used_costs_only_the_head_start(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A file where the folder should be (as a broken mount or a mistaken restore leaves): nothing raises into the
    analysis, the job or the sweeper; each says what went wrong by its type only."""
    (tmp_path / "early").write_text("not a folder")
    shared = SharedFindings(tmp_path / "early", budget_bytes=2**20)
    key = (1, 1, "m", None, "f")
    with caplog.at_level(logging.WARNING, logger="worker.shared_findings"):
        shared.save(key, *_entry(10))
        assert shared.take(key) is None and key not in shared
        shared.evict()
    assert [r.getMessage() for r in caplog.records] == [
        "early-analysis entry not shared: FileExistsError",
        "early-analysis entries not evicted: NotADirectoryError",
    ]


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
        cache.put((n, 1, "model", None, "f"), *_entry(1000))
    assert cache.get((0, 1, "model", None, "f")) is not None  # 0 is now the most recently used
    cache.put((3, 1, "model", None, "f"), *_entry(1000))
    assert (1, 1, "model", None, "f") not in cache and (0, 1, "model", None, "f") in cache and len(cache) == 3
    cache.put((4, 1, "model", None, "f"), *_entry(4000))
    assert (4, 1, "model", None, "f") not in cache and len(cache) == 3, "larger than the whole budget: not kept"


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
