"""A real PACS round trip: Orthanc auto-forwards RG1 to the node, and the results land back in the same study."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from db.models import DeliveryState, JobState
from tests.helpers.node import cxr_serve
from tests.helpers.orthanc import orthanc
from tests.helpers.peers import free_port

pytestmark = pytest.mark.integration

RESULT_MODALITIES = {"SR", "OT", "PR"}


@pytest.mark.parametrize("commitment", [False, True], ids=["store", "store+commitment"])
def test_orthanc_pushes_a_study_and_receives_sr_sc_and_gsps(rg1: Path, tmp_path: Path, commitment: bool) -> None:
    node_port = free_port()
    with orthanc(tmp_path / "orthanc", {"cxr": ("CXR_AI", "127.0.0.1", node_port)}) as pacs:
        node_toml = f"""
[[destinations]]
name = "orthanc"
ae_title = "{pacs.ae_title}"
host = "127.0.0.1"
port = {pacs.dicom_port}
storage_commitment = {"true" if commitment else "false"}
"""
        with cxr_serve(tmp_path / "node", None, extra_toml=node_toml, port=node_port) as node:
            uploaded = pacs.post("/instances", rg1.read_bytes(), "application/dicom")
            study = uploaded["ParentStudy"]
            pacs.post("/modalities/cxr/store", f'["{uploaded["ID"]}"]'.encode())  # what an auto-forward rule does
            deadline = time.monotonic() + 60
            series = pacs.get(f"/studies/{study}/series")
            while len(series) < 4 and time.monotonic() < deadline:
                time.sleep(0.5)
                series = pacs.get(f"/studies/{study}/series")
            (job,) = node.jobs()
            while job.state is not JobState.DELIVERED and time.monotonic() < deadline:
                time.sleep(0.5)
                (job,) = node.jobs()
            assert job.state is JobState.DELIVERED, "delivered (after the commitment report, when asked for)"
            assert node.delivery_states(job.job_id) == [DeliveryState.SENT] * 3
        modalities = {s["MainDicomTags"].get("Modality") for s in series}
        assert len(series) == 4 and modalities >= RESULT_MODALITIES, modalities
        sc_series = next(s for s in series if s["MainDicomTags"].get("Modality") == "OT")
        content_type, png = pacs.get_bytes(f"/instances/{sc_series['Instances'][0]}/preview")
        assert content_type == "image/png" and png.startswith(b"\x89PNG") and len(png) > 10_000
