"""``cxr detect``: run a detector on files without any server; write findings.json and overlay PNGs."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

from rich.progress import Progress

from models.imaging import DICOM_SUFFIXES, RASTER_SUFFIXES
from models.protocol import Detector
from worker.detect_file import detect_file
from worker.encode.banner import banner_for

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


def run_detect(
    paths: Iterable[Path],
    out: Path,
    detector: Detector,
    critical_thresholds: Mapping[str, float],
    fhir_patient_system: str | None = None,
) -> dict[str, Any]:
    """Writes ``out/findings.json`` (schema in the README) and ``out/<stem>.overlay.png`` per decodable image; with
    ``fhir_patient_system``, ``out/<stem>.fhir.json`` per DICOM file too."""
    out.mkdir(parents=True, exist_ok=True)
    files = list(expand(paths))
    images: list[dict[str, Any]] = []
    banner = banner_for(detector.provenance)
    with Progress(transient=True) as progress:
        task = progress.add_task("detecting", total=len(files))
        for index, path in enumerate(files):
            stem = f"{index:04d}_{path.stem}"
            images.append(detect_file(path, out, stem, detector, banner, critical_thresholds, fhir_patient_system))
            progress.advance(task)
    document = {
        "schema_version": SCHEMA_VERSION,
        "detector": asdict(detector.provenance),
        "images": images,
    }
    (out / "findings.json").write_text(json.dumps(document, indent=2))
    return document
