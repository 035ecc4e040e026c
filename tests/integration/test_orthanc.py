"""A real PACS round trip: Orthanc auto-forwards RG1 to the node, and the results land back in the same study."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from db.models import DeliveryState, JobState
from tests.helpers.cli import run_cli
from tests.helpers.node import cxr_serve
from tests.helpers.orthanc import Orthanc, orthanc
from tests.helpers.peers import free_port

pytestmark = pytest.mark.integration

RESULT_MODALITIES = {"SR", "OT", "PR"}


def orthanc_destination(pacs: Orthanc, commitment: bool = False, kinds: str = "") -> str:
    return f"""
[[destinations]]
name = "orthanc"
ae_title = "{pacs.ae_title}"
host = "127.0.0.1"
port = {pacs.dicom_port}
storage_commitment = {"true" if commitment else "false"}
{f"kinds = {kinds}" if kinds else ""}
"""


@pytest.mark.parametrize("commitment", [False, True], ids=["store", "store+commitment"])
def test_orthanc_pushes_a_study_and_receives_sr_sc_gsps_and_seg(rg1: Path, tmp_path: Path, commitment: bool) -> None:
    node_port = free_port()
    with orthanc(tmp_path / "orthanc", {"cxr": ("CXR_AI", "127.0.0.1", node_port)}) as pacs:
        node_toml = orthanc_destination(pacs, commitment, kinds='["SR", "SC", "GSPS", "SEG", "KOS"]')
        with cxr_serve(tmp_path / "node", None, extra_toml=node_toml, port=node_port) as node:
            uploaded = pacs.post("/instances", rg1.read_bytes(), "application/dicom")
            study = uploaded["ParentStudy"]
            pacs.post("/modalities/cxr/store", f'["{uploaded["ID"]}"]'.encode())  # what an auto-forward rule does
            deadline = time.monotonic() + 60
            series = pacs.get(f"/studies/{study}/series")
            while len(series) < 5 and time.monotonic() < deadline:
                time.sleep(0.5)
                series = pacs.get(f"/studies/{study}/series")
            (job,) = node.jobs()
            while job.state is not JobState.DELIVERED and time.monotonic() < deadline:
                time.sleep(0.5)
                (job,) = node.jobs()
            assert job.state is JobState.DELIVERED, "delivered (after the commitment report, when asked for)"
            assert node.delivery_states(job.job_id) == [DeliveryState.SENT] * 4
        modalities = {s["MainDicomTags"].get("Modality") for s in series}
        assert len(series) == 5 and modalities >= RESULT_MODALITIES | {"SEG"}, modalities
        sc_series = next(s for s in series if s["MainDicomTags"].get("Modality") == "OT")
        content_type, png = pacs.get_bytes(f"/instances/{sc_series['Instances'][0]}/preview")
        assert content_type == "image/png" and png.startswith(b"\x89PNG") and len(png) > 10_000


def test_after_a_retraction_orthanc_holds_our_rejection_note(rg1: Path, tmp_path: Path) -> None:
    """``cxr retract`` on a delivered job: Orthanc's study gains our KOS, and over REST its references are the SR,
    the SC and the GSPS it holds."""
    node_port = free_port()
    with orthanc(tmp_path / "orthanc", {"cxr": ("CXR_AI", "127.0.0.1", node_port)}) as pacs:
        node_toml = orthanc_destination(pacs)
        with cxr_serve(tmp_path / "node", None, extra_toml=node_toml, port=node_port) as node:
            uploaded = pacs.post("/instances", rg1.read_bytes(), "application/dicom")
            study = uploaded["ParentStudy"]
            pacs.post("/modalities/cxr/store", f'["{uploaded["ID"]}"]'.encode())
            wait_until(lambda: [j.state for j in node.jobs()] == [JobState.DELIVERED])
            ours = {
                pacs.get(f"/instances/{i}")["MainDicomTags"]["SOPInstanceUID"]
                for s in pacs.get(f"/studies/{study}/series")
                if s["MainDicomTags"].get("Modality") in RESULT_MODALITIES
                for i in s["Instances"]
            }
            (job,) = node.jobs()
            result = run_cli(
                "retract", str(job.job_id), "--reason", "model withdrawn", "--config", str(node.config), cwd=tmp_path
            )
            assert result.returncode == 0, result.stdout + result.stderr
            wait_until(
                lambda: any(s["MainDicomTags"].get("Modality") == "KO" for s in pacs.get(f"/studies/{study}/series"))
            )
            (ko_series,) = [
                s for s in pacs.get(f"/studies/{study}/series") if s["MainDicomTags"].get("Modality") == "KO"
            ]
            tags = pacs.get(f"/instances/{ko_series['Instances'][0]}/tags?simplify")
            assert [j.state for j in node.jobs()] == [JobState.RETRACTED]
    referenced = {
        item["ReferencedSOPInstanceUID"]
        for study_item in tags["CurrentRequestedProcedureEvidenceSequence"]
        for series_item in study_item["ReferencedSeriesSequence"]
        for item in series_item["ReferencedSOPSequence"]
    }
    assert tags["ConceptNameCodeSequence"][0]["CodeValue"] == "113001"
    assert referenced == ours and len(ours) == 3


def wait_until(condition: Callable[[], bool], timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.5)
