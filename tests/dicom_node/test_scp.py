"""dicom_node.scp, dicom_node.handlers and dicom_node.completion: the SCP with real associations (DCMTK and pynetdicom
peers) and a real database."""

from __future__ import annotations

import copy
import subprocess
import time
from pathlib import Path

import pydicom
from pydicom.uid import ExplicitVRLittleEndian
from pynetdicom import AE
from pynetdicom.sop_class import ComputedRadiographyImageStorage
from sqlalchemy import select

from config.settings import ScpSettings, Settings
from db.engine import SessionFactory
from db.jobs import list_jobs
from db.models import Instance, JobState, Study
from db.studies import study_facts
from dicom_node.rules import patient_age_years
from dicom_node.scp import start_node
from tests.helpers.peers import require_tool, storescu
from tests.helpers.scp import Node, wait_for


def test_echo_with_dcmtk(node: Node) -> None:
    require_tool("echoscu")
    result = subprocess.run(["echoscu", "-aec", "CXR_AI", "127.0.0.1", str(node.port)], capture_output=True)
    assert result.returncode == 0, result.stderr


def test_store_spools_records_and_completes_once(node: Node, session_factory: SessionFactory, rg1: Path) -> None:
    running, enqueued, settings = node, node.enqueued, node.settings
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
        jobs = list_jobs(s, ds.StudyInstanceUID)
    assert [j.state for j in jobs] == [JobState.QUEUED]
    with session_factory() as s:
        (recorded,) = study_facts(s, jobs[0].study_id).instances
    assert recorded.patient_age_years == patient_age_years(
        ds.get("PatientAge"), ds.get("PatientBirthDate"), ds.get("StudyDate")
    )
    assert recorded.view_position == "PA" and recorded.body_part_examined == "CHEST"
    with session_factory() as s:  # the equipment, for the agreement report and the drift watch (not patient data)
        instance = s.scalars(select(Instance).where(Instance.sop_instance_uid == ds.SOPInstanceUID)).one()
    assert (instance.manufacturer, instance.manufacturer_model_name) == (ds.Manufacturer, ds.ManufacturerModelName)


def test_jpeg2000_is_accepted(node: Node, rg1_j2kr: Path) -> None:
    assert storescu(rg1_j2kr, node.port, "CXR_AI", "-xv").returncode == 0


def test_non_chest_study_is_accepted_but_not_eligible(node: Node, session_factory: SessionFactory, rg3: Path) -> None:
    running, enqueued = node, node.enqueued
    assert storescu(rg3, running.port).returncode == 0
    study = pydicom.dcmread(rg3, stop_before_pixels=True).StudyInstanceUID

    def recorded() -> bool:
        with session_factory() as s:
            return bool(list_jobs(s, study))

    wait_for(recorded)
    with session_factory() as s:
        (job,) = list_jobs(s, study)
    assert job.state is JobState.NOT_ELIGIBLE and "EXTREMITY" in (job.reason or "")
    assert enqueued == []


def _send(port: int, ds: pydicom.Dataset, priority: int = 2, calling_ae: str = "TEST") -> int:
    ae = AE(ae_title=calling_ae)
    ae.add_requested_context(ComputedRadiographyImageStorage, ExplicitVRLittleEndian)
    assoc = ae.associate("127.0.0.1", port, ae_title="CXR_AI")
    assert assoc.is_established
    try:
        return int(assoc.send_c_store(ds, priority=priority).Status)
    finally:
        assoc.release()


def test_high_priority_or_a_stat_sender_puts_the_study_in_the_stat_lane(
    tmp_path: Path, session_factory: SessionFactory, rg1_dataset: pydicom.Dataset
) -> None:
    settings = Settings(
        data_dir=tmp_path / "var", scp=ScpSettings(host="127.0.0.1", port=0, stat_calling_aets=["ED_CR"])
    )
    running = start_node(settings, session_factory, lambda _: None)
    sent = {}
    try:
        for name, priority, calling in (("routine", 2, "TEST"), ("high", 1, "TEST"), ("ed", 0, "ED_CR")):
            ds = copy.deepcopy(rg1_dataset)
            ds.StudyInstanceUID, ds.SOPInstanceUID = f"1.2.826.0.1.3680043.8.498.7{len(sent)}", f"1.2.3.{len(sent)}"
            assert _send(running.port, ds, priority, calling) == 0
            sent[name] = str(ds.StudyInstanceUID)
    finally:
        running.stop()
    with session_factory() as s:
        stat = {name: s.scalar(select(Study.stat).where(Study.study_instance_uid == uid)) for name, uid in sent.items()}
    assert stat == {"routine": False, "high": True, "ed": True}


def test_uid_mismatch_and_traversal_are_refused_and_nothing_is_spooled(
    node: Node, rg1_dataset: pydicom.Dataset
) -> None:
    running, settings = node, node.settings
    bad_study = copy.deepcopy(rg1_dataset)
    bad_study.SOPInstanceUID = "1.2.3.999"
    bad_study.StudyInstanceUID = "1.2/../../../tmp"
    assert _send(running.port, bad_study) == 0xC000
    # The node keeps serving the next association.
    assert storescu(Path(rg1_dataset.filename), running.port).returncode == 0
    assert sorted(p.name for p in settings.spool_dir.iterdir()) == [".incoming", str(rg1_dataset.StudyInstanceUID)]
    assert list((settings.spool_dir / ".incoming").iterdir()) == []


def test_an_association_left_open_completes_by_the_stability_timeout(
    tmp_path: Path, session_factory: SessionFactory, rg1: Path
) -> None:
    from config.settings import ScpSettings, Settings
    from dicom_node.scp import start_node

    enqueued: list[int] = []
    settings = Settings(
        data_dir=tmp_path / "var",
        scp=ScpSettings(
            host="127.0.0.1", port=0, completion_debounce_s=0, completion_stability_s=2.0, completion_poll_s=0.05
        ),
    )
    running = start_node(settings, session_factory, enqueued.append)
    try:
        ae = AE(ae_title="LINGER")
        ae.add_requested_context(ComputedRadiographyImageStorage, ExplicitVRLittleEndian)
        assoc = ae.associate("127.0.0.1", running.port, ae_title="CXR_AI")
        assert int(assoc.send_c_store(pydicom.dcmread(rg1)).Status) == 0
        time.sleep(0.5)
        assert enqueued == [], "not complete while the sender may still send more"
        wait_for(lambda: len(enqueued) == 1, timeout_s=10)
        assoc.release()
        time.sleep(0.5)
        assert len(enqueued) == 1, "the release adds no second job"
    finally:
        running.stop()


def test_a_late_image_starts_a_follow_up_job(node: Node, rg1: Path, tmp_path: Path) -> None:
    from tests.helpers.encode_cases import second_view

    assert storescu(rg1, node.port).returncode == 0
    wait_for(lambda: len(node.enqueued) == 1)
    late = tmp_path / "lateral.dcm"
    second_view(pydicom.dcmread(rg1)).save_as(late, enforce_file_format=True)
    assert storescu(late, node.port).returncode == 0
    wait_for(lambda: len(node.enqueued) == 2)
    assert node.enqueued[0] != node.enqueued[1]


def test_a_pending_study_survives_an_scp_restart(tmp_path: Path, session_factory: SessionFactory, rg1: Path) -> None:
    """Completion state is in the database: a study received just before a restart still becomes a job."""
    from config.settings import ScpSettings, Settings
    from dicom_node.scp import start_node

    settings = Settings(
        data_dir=tmp_path / "var",
        # Long enough that the first node surely stops before the study is due, even on a loaded machine; every
        # study waits it (no sender is trusted to send a study over one association).
        scp=ScpSettings(
            host="127.0.0.1",
            port=0,
            completion_debounce_s=6.0,
            completion_poll_s=0.05,
            completion_learn_senders=False,
        ),
    )
    first: list[int] = []
    running = start_node(settings, session_factory, first.append)
    assert storescu(rg1, running.port).returncode == 0
    running.stop()  # before the debounce ran out
    assert first == []
    after_restart: list[int] = []
    restarted = start_node(settings, session_factory, after_restart.append)
    try:
        wait_for(lambda: len(after_restart) == 1, timeout_s=20)
    finally:
        restarted.stop()
