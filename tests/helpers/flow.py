"""What the pipeline tests share: distinct copies of a radiograph, the node's database, and the exactly-once check."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pydicom

from db import jobs
from db.engine import SessionFactory, make_engine, make_session_factory
from db.migrate import upgrade
from db.models import JobState
from tests.helpers.encode_cases import derived_uid


def write_copies(
    source: pydicom.Dataset, directory: Path, count: int, tag: str, study_uid: str | None = None
) -> list[Path]:
    """``count`` copies of ``source`` with UIDs derived from ``tag``: each its own study, or all in ``study_uid``."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        ds = copy.deepcopy(source)
        ds.StudyInstanceUID = study_uid or derived_uid(f"{tag}-study", str(i))
        ds.SeriesInstanceUID = derived_uid(f"{tag}-series", str(i))
        ds.SOPInstanceUID = derived_uid(f"{tag}-instance", str(i))
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        paths.append(directory / f"{tag}-{i:03d}.dcm")
        ds.save_as(paths[-1], enforce_file_format=True)
    return paths


@contextmanager
def node_database(database_url: str) -> Iterator[SessionFactory]:
    """The node's database, migrated, for the test to read while the node runs."""
    upgrade(database_url)
    engine = make_engine(database_url)
    try:
        yield make_session_factory(engine)
    finally:
        engine.dispose()


def job_states(sessions: SessionFactory) -> list[JobState]:
    with sessions() as session:
        return [job.state for job in jobs.list_jobs(session)]


def assert_each_object_once(pacs: Path, receptions: Path, studies: int) -> None:
    """Three objects per study (SR, SC, GSPS) arrived, each exactly once."""
    received = receptions.read_text().split()
    assert len(received) == 3 * studies, f"each object exactly once: {len(received)} receptions"
    sop_uids = [pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID for p in pacs.iterdir()]
    assert len(set(sop_uids)) == len(sop_uids) == 3 * studies


STUDIES = 20


def copies(rg1: pydicom.Dataset, directory: Path) -> list[Path]:
    """``STUDIES`` one-image studies."""
    return write_copies(rg1, directory, STUDIES, "killed")
