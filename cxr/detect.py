"""``cxr detect``: run a detector on files without any server; write findings.json and overlay PNGs."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import cv2
from rich.progress import Progress

from models.codes import code_for
from models.imaging import DICOM_SUFFIXES, RASTER_SUFFIXES, UndecodableImageError, decode_file
from models.overlay import render_overlay
from models.protocol import Detector
from worker.encode.common import banner_for

SCHEMA_VERSION = 1


def expand(paths: Iterable[Path]) -> Iterator[Path]:
    """Files as given, and the DICOM/PNG/JPEG files inside given folders, in a stable order."""
    for path in paths:
        if path.is_dir():
            yield from sorted(
                p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in DICOM_SUFFIXES | RASTER_SUFFIXES
            )
        else:
            yield path


def run_detect(paths: Iterable[Path], out: Path, detector: Detector) -> dict[str, Any]:
    """Writes ``out/findings.json`` (schema below) and ``out/<stem>.overlay.png`` per decodable image."""
    out.mkdir(parents=True, exist_ok=True)
    files = list(expand(paths))
    images: list[dict[str, Any]] = []
    banner = banner_for(detector.provenance)
    with Progress(transient=True) as progress:
        task = progress.add_task("detecting", total=len(files))
        for index, path in enumerate(files):
            images.append(_detect_one(path, out, index, detector, banner))
            progress.advance(task)
    document = {
        "schema_version": SCHEMA_VERSION,
        "detector": asdict(detector.provenance),
        "images": images,
    }
    (out / "findings.json").write_text(json.dumps(document, indent=2))
    return document


def _detect_one(path: Path, out: Path, index: int, detector: Detector, banner: str) -> dict[str, Any]:
    try:
        image = decode_file(path)
    except UndecodableImageError as exc:
        return {"file": str(path), "error": str(exc)}
    result = detector.detect([image])[0]
    overlay_path = out / f"{index:04d}_{path.stem}.overlay.png"
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
                "box": None if f.box is None else dict(zip(("x_min", "y_min", "x_max", "y_max"), f.box.as_tuple())),
            }
            for f in result.findings
        ],
    }
