"""The compose demo's PACS, outside docker: Debian's Orthanc with ``docker/demo/orthanc.json`` and its Lua rule.

Only what docker would change is changed: ports, storage, the node's address and the Lua script's path (and a shorter
StableAge). A chest study uploaded to Orthanc is forwarded once it is stable and the results come back into the same
study; a non-chest study is not forwarded; and the results arriving do not set off a second forward.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pydicom
import pytest

from tests.helpers.node import cxr_serve
from tests.helpers.orthanc import Orthanc, orthanc
from tests.helpers.peers import free_port

pytestmark = pytest.mark.integration

DEMO = Path(__file__).resolve().parents[2] / "docker" / "demo"
RESULT_MODALITIES = ["CR", "OT", "PR", "SR"]  # the source series, then SC, GSPS and SR


def demo_config() -> dict[str, Any]:
    config: dict[str, Any] = json.loads((DEMO / "orthanc.json").read_text())
    config["LuaScripts"] = [str(DEMO / "autoforward.lua")]
    config["StableAge"] = 2  # seconds; the demo waits 10
    return config


def series_modalities(pacs: Orthanc, study_uid: str) -> list[str]:
    found = pacs.post("/tools/find", json.dumps({"Level": "Study", "Query": {"StudyInstanceUID": study_uid}}).encode())
    if not found:
        return []
    return sorted(s["MainDicomTags"].get("Modality", "") for s in pacs.get(f"/studies/{found[0]}/series"))


def wait_for(check: Any, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met in time")
        time.sleep(0.5)


def test_a_chest_study_is_forwarded_once_and_its_results_come_back(tmp_path: Path, rg1: Path, rg3: Path) -> None:
    config = demo_config()
    ((user, password),) = config["RegisteredUsers"].items()
    node_port = free_port()
    modalities = {"cxr": ("CXR_AI", "127.0.0.1", node_port)}
    with (
        orthanc(tmp_path / "pacs", modalities, config, (user, password)) as pacs,
        cxr_serve(tmp_path / "node", pacs.dicom_port, port=node_port, destination_ae=config["DicomAet"]) as node,
    ):
        for source in (rg1, rg3):
            pacs.post("/instances", source.read_bytes(), "application/dicom")
        chest, other = (str(pydicom.dcmread(p, stop_before_pixels=True).StudyInstanceUID) for p in (rg1, rg3))
        wait_for(lambda: series_modalities(pacs, chest) == RESULT_MODALITIES, timeout_s=90)
        time.sleep(config["StableAge"] + 4)  # the results made the study change: it becomes stable again
        assert len(node.jobs(chest)) == 1, "the results must not be forwarded, nor the source a second time"
        assert node.jobs(other) == [], "a non-chest study stays in the PACS"
        assert series_modalities(pacs, chest) == RESULT_MODALITIES
        log = (tmp_path / "pacs" / "orthanc.log").read_text(errors="replace")
        assert log.count("cxr auto-forward: sending") == 1, log[-2000:]
