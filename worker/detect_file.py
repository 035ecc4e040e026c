"""Detection on a single file, outside the DICOM pipeline: ``cxr detect`` and the dashboard's PNG/JPEG upload."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import cv2

from models.codes import code_for
from models.imaging import UndecodableImageError, decode_file
from models.overlay import render_overlay
from models.protocol import Detector


def detect_file(path: Path, out: Path, stem: str, detector: Detector, banner: str) -> dict[str, Any]:
    """Decode one DICOM, PNG or JPEG file, detect, write ``out/<stem>.overlay.png``; the file's findings.json entry."""
    try:
        image = decode_file(path)
    except UndecodableImageError as exc:
        return {"file": str(path), "error": str(exc)}
    result = detector.detect([image])[0]
    overlay_path = out / f"{stem}.overlay.png"
    rgb = render_overlay(image.pixels, result.findings, banner, result.heatmap)
    cv2.imwrite(str(overlay_path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    rows, columns = image.pixels.shape
    return {
        "file": str(path),
        "rows": rows,
        "columns": columns,
        "abnormal": result.abnormality_score >= detector.abnormal_threshold,
        "abnormality_score": result.abnormality_score,
        "overlay": overlay_path.name,
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
