"""cxr.detect: ``cxr detect`` on DICOM, PNG and JPEG files, without any server."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import pydicom
from fhir.resources.R4B.bundle import Bundle

from models.baseline import BaselineDetector
from tests.helpers.cli import run_cli
from tests.helpers.weights import write_xrv_weights, xrv_weights_path
from worker.encode.sr import sr_uids


def test_cxr_detect_writes_json_and_overlay(tmp_path: Path, rg1: Path) -> None:
    out = tmp_path / "out"
    result = subprocess.run(
        [sys.executable, "-m", "cxr", "detect", str(rg1), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    document = json.loads((out / "findings.json").read_text())
    (image,) = document["images"]
    assert document["detector"]["name"] == "baseline"
    assert image["abnormal"] is True and image["findings"]
    for finding in image["findings"]:
        box = finding["box"]
        assert 0 <= box["x_min"] < box["x_max"] <= image["columns"]
        assert 0 <= box["y_min"] < box["y_max"] <= image["rows"]
        assert finding["code"]["scheme"] == "SCT"
    overlay = cv2.imread(str(out / image["overlay"]))
    assert overlay is not None and overlay.shape[:2] == (image["rows"], image["columns"])


def test_cxr_detect_reports_undecodable_files(tmp_path: Path) -> None:
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"not an image")
    out = tmp_path / "out"
    result = subprocess.run([sys.executable, "-m", "cxr", "detect", str(junk), "--out", str(out)], capture_output=True)
    assert result.returncode == 0
    assert "error" in json.loads((out / "findings.json").read_text())["images"][0]


def test_cxr_detect_with_torchxrayvision_draws_the_grad_cam_heat(tmp_path: Path, rg1: Path) -> None:
    write_xrv_weights("densenet121-res224-all", tmp_path / "weights")
    result = run_cli(
        "detect",
        str(rg1),
        "--out",
        str(tmp_path / "out"),
        "--detector",
        "xrv:densenet121-res224-all",
        "--weights-dir",
        str(tmp_path / "weights"),
        "--device",
        "cpu",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    document = json.loads((tmp_path / "out" / "findings.json").read_text())
    assert document["detector"]["name"] == "torchxrayvision densenet121-res224-all"
    (image,) = document["images"]
    assert image["findings"] and all(
        f["box"] is None or f["box"]["x_max"] <= image["columns"] for f in image["findings"]
    )
    overlay = cv2.imread(str(tmp_path / "out" / image["overlay"]))
    assert overlay is not None and overlay.shape[:2] == (image["rows"], image["columns"])


def test_missing_weights_stop_the_worker_and_detect_at_start_with_the_file_to_place(tmp_path: Path, rg1: Path) -> None:
    environment = {
        "CXR_DETECTOR": "xrv:densenet121-res224-all",
        "CXR_MODEL__WEIGHTS_DIR": str(tmp_path / "empty"),
        "CXR_DATA_DIR": str(tmp_path / "var"),
    }
    expected = xrv_weights_path("densenet121-res224-all", tmp_path).name
    assert run_cli("db", "upgrade", cwd=tmp_path, env=environment).returncode == 0  # the worker checks the schema first
    worker = run_cli("worker", "--queues", "gpu", cwd=tmp_path, env=environment)
    assert worker.returncode == 2 and expected in worker.stdout + worker.stderr
    detect = run_cli(
        "detect",
        str(rg1),
        "--out",
        str(tmp_path / "out"),
        "--detector",
        "xrv:densenet121-res224-all",
        cwd=tmp_path,
        env=environment,
    )
    assert detect.returncode == 2 and expected in detect.stdout + detect.stderr


def test_cxr_detect_prints_the_urgency_and_writes_the_fhir_bundle_the_node_would_send(
    tmp_path: Path, rg1: Path
) -> None:
    config = tmp_path / "cxr.toml"
    config.write_text(f'data_dir = "{tmp_path / "var"}"\n[urgency]\ncritical_thresholds = {{ Nodule = 0.8 }}\n')
    out = tmp_path / "out"
    result = run_cli("detect", str(rg1), "--out", str(out), "--fhir", "--config", str(config), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"critical (Nodule)  {rg1.name}" in result.stdout
    (image,) = json.loads((out / "findings.json").read_text())["images"]
    assert (image["urgency"], image["critical_labels"]) == ("critical", ["Nodule"])
    bundle = Bundle.model_validate_json((out / image["fhir"]).read_text())
    (report,) = [e.resource for e in bundle.entry if e.resource.get_resource_type() == "DiagnosticReport"]
    source = pydicom.dcmread(rg1, stop_before_pixels=True)
    _, node_sr = sr_uids(str(source.StudyInstanceUID), [str(source.SOPInstanceUID)], BaselineDetector().provenance)
    assert report.identifier[0].value == f"urn:oid:{node_sr}", "the same identifier the node would send"
    assert report.conclusionCode[1].coding[0].code == "394849002", "High priority"


def test_cxr_detect_says_abnormal_by_default_and_writes_no_bundle_unasked(tmp_path: Path, rg1: Path) -> None:
    out = tmp_path / "out"
    result = run_cli("detect", str(rg1), "--out", str(out), cwd=tmp_path)
    assert result.returncode == 0 and f"abnormal  {rg1.name}" in result.stdout
    (image,) = json.loads((out / "findings.json").read_text())["images"]
    assert image["urgency"] == "abnormal" and "fhir" not in image and not list(out.glob("*.fhir.json"))
