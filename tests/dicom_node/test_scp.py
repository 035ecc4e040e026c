"""The SCP with real associations (DCMTK and pynetdicom peers) and a real database."""

from __future__ import annotations

import copy
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pydicom
import pytest
from pydicom.uid import ExplicitVRLittleEndian
from pynetdicom import AE
from pynetdicom.sop_class import ComputedRadiographyImageStorage

from db import repository
from db.engine import SessionFactory
from db.models import JobState
from db.settings import ScpSettings, Settings
from dicom_node.scp import StorageNode, start_node
from tests.helpers.peers import require_tool, storescu


@pytest.fixture
def node(tmp_path: Path, session_factory: SessionFactory) -> Iterator[tuple[StorageNode, list[int], Settings]]:
    enqueued: list[int] = []
    settings = Settings(
        data_dir=tmp_path / "var",
        scp=ScpSettings(host="127.0.0.1", port=0, completion_debounce_s=0, completion_poll_s=0.05),
    )
    running = start_node(settings, session_factory, enqueued.append)
    yield running, enqueued, settings
    running.stop()


def wait_for(condition: object, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def test_echo_with_dcmtk(node: tuple[StorageNode, list[int], Settings]) -> None:
    require_tool("echoscu")
    result = subprocess.run(["echoscu", "-aec", "CXR_AI", "127.0.0.1", str(node[0].port)], capture_output=True)
    assert result.returncode == 0, result.stderr


def test_store_spools_records_and_completes_once(
    node: tuple[StorageNode, list[int], Settings], session_factory: SessionFactory, rg1: Path
) -> None:
    running, enqueued, settings = node
    result = storescu(rg1, running.port)
    assert result.returncode == 0, result.stderr
    ds = pydicom.dcmread(rg1, stop_before_pixels=True)
    spooled = settings.spool_dir / ds.StudyInstanceUID / f"{ds.SOPInstanceUID}.dcm"
    assert pydicom.dcmread(spooled).SOPInstanceUID == ds.SOPInstanceUID
    wait_for(lambda: len(enqueued) == 1)
    # The same instance again: acknowledged, but no second job.
    assert storescu(rg1, running.port).returncode == 0
    time.sleep(0.5)
    assert len(enqueued) == 1
    with session_factory() as s:
        jobs = repository.list_jobs(s, ds.StudyInstanceUID)
    assert [j.state for j in jobs] == [JobState.QUEUED]


def test_jpeg2000_is_accepted(node: tuple[StorageNode, list[int], Settings], rg1_j2kr: Path) -> None:
    assert storescu(rg1_j2kr, node[0].port, "CXR_AI", "-xv").returncode == 0


def test_non_chest_study_is_accepted_but_not_eligible(
    node: tuple[StorageNode, list[int], Settings], session_factory: SessionFactory, rg3: Path
) -> None:
    running, enqueued, _ = node
    assert storescu(rg3, running.port).returncode == 0
    study = pydicom.dcmread(rg3, stop_before_pixels=True).StudyInstanceUID

    def recorded() -> bool:
        with session_factory() as s:
            return bool(repository.list_jobs(s, study))

    wait_for(recorded)
    with session_factory() as s:
        (job,) = repository.list_jobs(s, study)
    assert job.state is JobState.NOT_ELIGIBLE and "EXTREMITY" in (job.reason or "")
    assert enqueued == []


def _send(port: int, ds: pydicom.Dataset) -> int:
    ae = AE(ae_title="TEST")
    ae.add_requested_context(ComputedRadiographyImageStorage, ExplicitVRLittleEndian)
    assoc = ae.associate("127.0.0.1", port, ae_title="CXR_AI")
    assert assoc.is_established
    try:
        return int(assoc.send_c_store(ds).Status)
    finally:
        assoc.release()


def test_uid_mismatch_and_traversal_are_refused_and_nothing_is_spooled(
    node: tuple[StorageNode, list[int], Settings], rg1_dataset: pydicom.Dataset
) -> None:
    running, _, settings = node
    bad_study = copy.deepcopy(rg1_dataset)
    bad_study.SOPInstanceUID = "1.2.3.999"
    bad_study.StudyInstanceUID = "1.2/../../../tmp"
    assert _send(running.port, bad_study) == 0xC000
    # The node keeps serving the next association.
    assert storescu(Path(rg1_dataset.filename), running.port).returncode == 0
    assert sorted(p.name for p in settings.spool_dir.iterdir()) == [".incoming", str(rg1_dataset.StudyInstanceUID)]
    assert list((settings.spool_dir / ".incoming").iterdir()) == []
