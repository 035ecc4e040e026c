"""dicom_node.duplicates and dicom_node.ingest over real associations: a SOP Instance UID received again. The same
instance is kept as it was (0x0000); changed content is its next revision, spooled beside the first; the UID under
another study is refused with its own status and reason; a spooled file is never replaced, no orphan file is left, and
no study is left incomplete."""

from __future__ import annotations

import copy
import os
from pathlib import Path

import pydicom

from db import jobs, studies
from db.engine import SessionFactory
from db.models import Study
from dicom_node.validation import Status
from tests.helpers.scp import Node, store, wait_for


def spooled(node: Node) -> list[tuple[Path, int, int]]:
    """(path, inode, mtime in ns) of every spooled file: a replaced file changes inode."""
    return [(p, p.stat().st_ino, p.stat().st_mtime_ns) for p in node.spooled_files()]


def study_rows(session_factory: SessionFactory) -> int:
    with session_factory() as s:
        return len(s.query(Study).all())


def first_stored(node: Node, session_factory: SessionFactory, rg1: pydicom.Dataset) -> list[tuple[Path, int, int]]:
    assert store(node.port, rg1) == (Status.SUCCESS, "")
    wait_for(lambda: len(node.enqueued) == 1)
    return spooled(node)


def test_an_identical_re_send_changes_nothing(
    node: Node, session_factory: SessionFactory, rg1_dataset: pydicom.Dataset
) -> None:
    before = first_stored(node, session_factory, rg1_dataset)
    assert store(node.port, copy.deepcopy(rg1_dataset)) == (Status.SUCCESS, "")
    assert spooled(node) == before, "the spooled file is the first one, untouched"
    with session_factory() as s:
        assert len(jobs.list_jobs(s)) == 1 and study_rows(session_factory) == 1


def test_the_uid_under_another_study_is_refused_and_leaves_nothing(
    node: Node, session_factory: SessionFactory, rg1_dataset: pydicom.Dataset
) -> None:
    before = first_stored(node, session_factory, rg1_dataset)
    moved = copy.deepcopy(rg1_dataset)
    moved.StudyInstanceUID = pydicom.uid.generate_uid()
    assert store(node.port, moved) == (Status.UID_IN_OTHER_STUDY, "SOP Instance UID already stored in another study")
    assert spooled(node) == before, "no file written under the other study"
    assert not (node.settings.spool_dir / str(moved.StudyInstanceUID)).exists()
    assert study_rows(session_factory) == 1, "no study row that could never complete"
    with session_factory() as s:
        location = studies.instance_location(s, str(rg1_dataset.SOPInstanceUID))
    assert location is not None and location.study_instance_uid == str(rg1_dataset.StudyInstanceUID)


def test_changed_content_under_the_same_uid_is_a_new_revision_beside_the_first(
    node: Node, session_factory: SessionFactory, rg1_dataset: pydicom.Dataset
) -> None:
    before = first_stored(node, session_factory, rg1_dataset)
    corrected = copy.deepcopy(rg1_dataset)
    corrected.PatientName = "Corrected^Name"
    assert store(node.port, corrected) == (Status.SUCCESS, "")
    wait_for(lambda: len(node.enqueued) == 2)
    assert set(before) <= set(spooled(node)), "the first revision's file is untouched"
    assert pydicom.dcmread(before[0][0]).PatientName == rg1_dataset.PatientName
    with session_factory() as s:
        location = studies.instance_location(s, str(rg1_dataset.SOPInstanceUID))
        assert location is not None and studies.instance_revision(s, str(rg1_dataset.SOPInstanceUID)) == 2
    assert location.spool_path.name == f"{rg1_dataset.SOPInstanceUID}.r2.dcm"
    assert pydicom.dcmread(location.spool_path).PatientName == "Corrected^Name"
    assert os.listdir(node.settings.spool_dir / ".incoming") == [], "nothing left behind"
    assert store(node.port, copy.deepcopy(corrected)) == (Status.SUCCESS, "")
    assert len(spooled(node)) == 2, "the same correction again is the same revision"


def test_a_file_a_crash_left_unrecorded_is_taken_over_by_the_retry(
    node: Node, session_factory: SessionFactory, rg1_dataset: pydicom.Dataset
) -> None:
    """A crash between the move into the spool and the commit leaves a file no row names (never acknowledged): the
    sender's retry takes its place and is recorded."""
    orphan = node.settings.spool_dir / str(rg1_dataset.StudyInstanceUID) / f"{rg1_dataset.SOPInstanceUID}.dcm"
    orphan.parent.mkdir(parents=True)
    orphan.write_bytes(b"half a file from before the crash")
    assert store(node.port, rg1_dataset) == (Status.SUCCESS, "")
    with session_factory() as s:
        assert studies.instance_location(s, str(rg1_dataset.SOPInstanceUID)) is not None
    assert pydicom.dcmread(orphan).SOPInstanceUID == rg1_dataset.SOPInstanceUID
    wait_for(lambda: len(node.enqueued) == 1)
