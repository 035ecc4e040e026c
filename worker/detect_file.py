"""Detection on a single file, outside the DICOM pipeline: ``cxr detect`` and the dashboard's PNG/JPEG upload."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

import cv2

from models.codes import code_for
from models.imaging import RASTER_SUFFIXES, UndecodableImageError, decode_file, read_dataset
from models.overlay import render_overlay
from models.protocol import Detector, ImageResult
from models.urgency import triage
from worker.clinical.fhir import build_bundle
from worker.clinical.report import PatientHeader, report_for_image


def detect_file(
    path: Path,
    out: Path,
    stem: str,
    detector: Detector,
    banner: str,
    critical_thresholds: Mapping[str, float],
    fhir_patient_system: str | None = None,
) -> dict[str, Any]:
    """Decode one DICOM, PNG or JPEG file, detect, write ``out/<stem>.overlay.png``; the file's findings.json entry.

    With ``fhir_patient_system``, a DICOM file also gets ``out/<stem>.fhir.json``: the Bundle the node would send."""
    try:
        image = decode_file(path)
    except UndecodableImageError as exc:
        return {"file": str(path), "error": str(exc)}
    result = detector.detect([image])[0]
    triaged = triage([result], critical_thresholds, detector.abnormal_threshold)
    overlay_path = out / f"{stem}.overlay.png"
    alert = f"{triaged.alert} \u2013 {banner}" if triaged.alert else banner
    rgb = render_overlay(image.pixels, result.findings, alert, result.heatmap)
    cv2.imwrite(str(overlay_path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    rows, columns = image.pixels.shape
    entry = _entry(path, rows, columns, result, detector, overlay_path.name)
    entry |= {"urgency": triaged.urgency.value, "critical_labels": list(triaged.critical_labels)}
    if fhir_patient_system is not None and path.suffix.lower() not in RASTER_SUFFIXES:
        source = read_dataset(path, header_only=True)
        report = report_for_image(source, result, detector.provenance, critical_thresholds)
        bundle = build_bundle(report, PatientHeader.from_dataset(source), fhir_patient_system)
        (out / f"{stem}.fhir.json").write_text(json.dumps(bundle, indent=2))
        entry["fhir"] = f"{stem}.fhir.json"
    return entry


def _entry(
    path: Path, rows: int, columns: int, result: ImageResult, detector: Detector, overlay: str
) -> dict[str, Any]:
    return {
        "file": str(path),
        "rows": rows,
        "columns": columns,
        "abnormal": result.abnormality_score >= detector.abnormal_threshold,
        "abnormality_score": result.abnormality_score,
        "overlay": overlay,
        "findings": [
            {
                "label": f.label,
                "code": asdict(code_for(f.label)),
                "probability": f.probability,
                "box": None
                if f.box is None
                else dict(zip(("x_min", "y_min", "x_max", "y_max"), f.box.as_tuple(), strict=True)),
            }
            for f in result.findings
        ],
    }
