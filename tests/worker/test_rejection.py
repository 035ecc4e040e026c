"""dicom_node.rejection and the worker after it: an IOCM rejection note (a Key Object Selection titled 113001) sent
by DCMTK storescu. After delivery, the results made from the rejected image are retracted: our own rejection KOS
reaches the destination, references exactly our SR, SC and GSPS and passes dciodvfy, and the job shows RETRACTED.
Before analysis, the queued work is cancelled and nothing is sent. A KOS that is no rejection note is ignored."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import highdicom as hd
import pydicom
import pytest

from config.settings import ScpSettings, Settings
from db import jobs
from db.engine import SessionFactory
from db.models import JobState
from dicom_node.rules import WITHDRAWN_REASON
from dicom_node.scp import StorageNode
from tests.helpers.encode_cases import second_view
from tests.helpers.peers import dciodvfy_errors, received, storescp, storescu
from tests.helpers.pipeline import analyse_and_deliver, before_the_sr, context_for, delivering, with_pacs
from tests.helpers.scp import scp_node, wait_for
from worker.analyze import analyze_job
from worker.context import WorkerContext

KOS_CLASS = "1.2.840.10008.5.1.4.1.1.88.59"
SC_CLASS = "1.2.840.10008.5.1.4.1.1.7"
GSPS_CLASS = "1.2.840.10008.5.1.4.1.1.11.1"


def note(
    source: pydicom.Dataset, directory: Path, code: str = "113001", meaning: str = "Rejected for Quality Reasons"
) -> Path:
    """The note a PACS sends: a KOS titled with the reason, referencing the rejected image (built with highdicom)."""
    content = hd.ko.KeyObjectSelection(
        document_title=hd.sr.CodedConcept(code, "DCM", meaning), referenced_objects=[source]
    )
    kos = hd.ko.KeyObjectSelectionDocument(
        evidence=[source],
        content=content,
        series_instance_uid=hd.UID(),
        series_number=99,
        sop_instance_uid=hd.UID(),
        instance_number=1,
        manufacturer="PACS vendor",
    )
    path = directory / f"note-{code}.dcm"
    kos.save_as(path, enforce_file_format=True)
    return path


def withdrawn_by(kos: pydicom.Dataset) -> set[str]:
    """The SOP Instance UIDs our rejection KOS withdraws."""
    return {
        str(item.ReferencedSOPSequence[0].ReferencedSOPInstanceUID)
        for item in kos.ContentSequence
        if item.ValueType in ("IMAGE", "COMPOSITE")
    }


@contextmanager
def study_received(
    tmp_path: Path, session_factory: SessionFactory, rg1: Path
) -> Iterator[tuple[WorkerContext, StorageNode, list[int]]]:
    """Our SCP, with storescp as the PACS (files in ``tmp_path/pacs``), after storescu sent it RG1: its job queued."""
    with storescp(tmp_path / "pacs") as pacs:
        settings = node_settings(tmp_path, pacs)
        context = context_for(settings, session_factory)
        with scp_node(settings, session_factory) as (running, enqueued):
            assert storescu(rg1, running.port).returncode == 0
            wait_for(lambda: len(enqueued) == 1)
            yield context, running, enqueued


def node_settings(tmp_path: Path, pacs_port: int) -> Settings:
    scp = ScpSettings(host="127.0.0.1", port=0, completion_debounce_s=0, completion_poll_s=0.05)
    return with_pacs(tmp_path, pacs_port).model_copy(update={"scp": scp})


def test_a_rejection_after_delivery_retracts_the_results(
    tmp_path: Path, session_factory: SessionFactory, rg1: Path, rg1_dataset: pydicom.Dataset
) -> None:
    with study_received(tmp_path, session_factory, rg1) as (context, running, enqueued):
        assert analyse_and_deliver(context, enqueued[0]) is JobState.DELIVERED
        ours = {str(ds.SOPInstanceUID) for ds in received(tmp_path / "pacs")}
        sent = storescu(note(rg1_dataset, tmp_path), running.port)
        assert sent.returncode == 0, sent.stderr
        wait_for(lambda: len(enqueued) == 2)
        assert analyse_and_deliver(context, enqueued[1]) is JobState.NOT_ELIGIBLE
        files = [p for p in (tmp_path / "pacs").iterdir() if pydicom.dcmread(p).SOPClassUID == KOS_CLASS]
    (kos_file,) = files
    kos = pydicom.dcmread(kos_file)
    assert withdrawn_by(kos) == ours and len(ours) == 3, "exactly our SR, SC and GSPS"
    assert kos.ConceptNameCodeSequence[0].CodeValue == "113001"
    assert dciodvfy_errors(kos_file) == []
    with session_factory() as s:
        first, second = jobs.list_jobs(s)
    assert first.state is JobState.RETRACTED and "(113001)" in (first.reason or "")
    assert second.reason == WITHDRAWN_REASON


def test_a_rejection_while_the_study_is_encoded_withdraws_the_objects_that_already_went(
    tmp_path: Path,
    session_factory: SessionFactory,
    rg1: Path,
    rg1_dataset: pydicom.Dataset,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The image's SC and GSPS reach the PACS while the SR is still to be built (issue 22); the rejection note arrives
    then. No SR goes out, the job ends NOT_ELIGIBLE, and the study's next analysis withdraws the SC and GSPS."""
    with study_received(tmp_path, session_factory, rg1) as (context, running, enqueued):

        def reject_once_the_images_objects_went() -> None:
            wait_for(lambda: len(received(tmp_path / "pacs")) == 2, timeout_s=30)
            assert storescu(note(rg1_dataset, tmp_path), running.port).returncode == 0
            wait_for(lambda: len(enqueued) == 2)

        before_the_sr(monkeypatch, reject_once_the_images_objects_went)
        with delivering(context) as (announce, _):
            outcome = analyze_job(context, enqueued[0], announce)
            announce(outcome.delivery_ids)
        assert outcome.state is JobState.NOT_ELIGIBLE
        went = {str(ds.SOPInstanceUID) for ds in received(tmp_path / "pacs")}
        assert analyse_and_deliver(context, enqueued[1]) is JobState.NOT_ELIGIBLE
        arrived = received(tmp_path / "pacs")
    assert sorted(str(ds.SOPClassUID) for ds in arrived) == sorted([SC_CLASS, GSPS_CLASS, KOS_CLASS]), "no SR"
    (kos,) = [ds for ds in arrived if ds.SOPClassUID == KOS_CLASS]
    assert withdrawn_by(kos) == went, "exactly the SC and GSPS that went"
    with session_factory() as s:
        first, _ = jobs.list_jobs(s)
    assert first.state is JobState.RETRACTED


def test_a_rejection_before_analysis_cancels_the_work_and_nothing_is_sent(
    tmp_path: Path, session_factory: SessionFactory, rg1: Path, rg1_dataset: pydicom.Dataset
) -> None:
    with study_received(tmp_path, session_factory, rg1) as (context, running, enqueued):
        assert (
            storescu(
                note(rg1_dataset, tmp_path, "113037", "Rejected for Patient Safety Reasons"), running.port
            ).returncode
            == 0
        )
        wait_for(lambda: len(enqueued) == 2)
        assert analyze_job(context, enqueued[0]).delivery_ids == (), "the cancelled job does nothing"
        assert analyse_and_deliver(context, enqueued[1]) is JobState.NOT_ELIGIBLE
        assert received(tmp_path / "pacs") == []
    with session_factory() as s:
        first, second = jobs.list_jobs(s)
    assert first.state is JobState.CANCELLED and "113037" in (first.reason or "")
    assert second.state is JobState.NOT_ELIGIBLE


def test_a_key_object_selection_that_is_no_rejection_is_acknowledged_and_ignored(
    tmp_path: Path, session_factory: SessionFactory, rg1: Path, rg1_dataset: pydicom.Dataset
) -> None:
    settings = node_settings(tmp_path, 1)
    with scp_node(settings, session_factory) as (running, enqueued):
        assert storescu(rg1, running.port).returncode == 0
        wait_for(lambda: len(enqueued) == 1)
        key_images = note(rg1_dataset, tmp_path, "113000", "Of Interest")
        assert storescu(key_images, running.port).returncode == 0
    with session_factory() as s:
        (only,) = jobs.list_jobs(s)
    assert only.state is JobState.QUEUED, "the study's work goes on"


def test_when_one_image_of_two_is_rejected_the_rest_is_analysed_again_under_new_uids(
    tmp_path: Path, session_factory: SessionFactory, rg1_dataset: pydicom.Dataset
) -> None:
    study = tmp_path / "study"
    study.mkdir()
    rg1_dataset.save_as(study / "kept.dcm", enforce_file_format=True)
    wrong = second_view(rg1_dataset)  # a second frontal image of the study, which the PACS will reject
    wrong.save_as(study / "wrong.dcm", enforce_file_format=True)
    with storescp(tmp_path / "pacs") as pacs:
        settings = node_settings(tmp_path, pacs)
        context = context_for(settings, session_factory)
        with scp_node(settings, session_factory) as (running, enqueued):
            assert storescu(study, running.port, "CXR_AI", "+sd").returncode == 0  # one association, both images
            wait_for(lambda: len(enqueued) == 1)
            assert analyse_and_deliver(context, enqueued[0]) is JobState.DELIVERED
            before = {str(ds.SOPInstanceUID) for ds in received(tmp_path / "pacs")}
            assert len(before) == 5, "an SR, and an SC and a GSPS per image"
            assert storescu(note(wrong, tmp_path), running.port).returncode == 0
            wait_for(lambda: len(enqueued) == 2)
            assert analyse_and_deliver(context, enqueued[1]) is JobState.DELIVERED
        after = received(tmp_path / "pacs")
    new = [ds for ds in after if str(ds.SOPInstanceUID) not in before]
    kinds = sorted(str(ds.SOPClassUID) for ds in new)
    assert kinds.count(KOS_CLASS) == 1, "the earlier results were withdrawn"
    remade = [ds for ds in new if ds.SOPClassUID != KOS_CLASS]
    assert len(remade) == 3, "a new SR, SC and GSPS for the image that remains, under new UIDs"
    (sr,) = [ds for ds in remade if ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.88.34"]
    evidence = {
        item.ReferencedSOPInstanceUID
        for study in sr.CurrentRequestedProcedureEvidenceSequence
        for series in study.ReferencedSeriesSequence
        for item in series.ReferencedSOPSequence
    }
    assert evidence == {str(rg1_dataset.SOPInstanceUID)}, "made without the rejected image"
