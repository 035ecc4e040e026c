from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2


def test_cxr_detect_writes_json_and_overlay(tmp_path: Path, rg1: Path) -> None:
    out = tmp_path / "out"
    result = subprocess.run(
        [sys.executable, "-m", "cxr", "detect", str(rg1), "--out", str(out)], capture_output=True, text=True, timeout=120
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
