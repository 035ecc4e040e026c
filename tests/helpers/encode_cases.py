"""Inputs for the encoding tests, all derived from pydicom-data's RG1 in memory: no binaries are committed."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pydicom
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from config.outputs import UrgencySettings
from config.settings import EquipmentSettings, ResultsSettings
from models.baseline import BaselineDetector
from models.imaging import decode_dataset
from worker.encode.bundle import EncodedObject
from worker.encode.inputs import AnalysedImage, EncodeContext

DX_FOR_PRESENTATION = "1.2.840.10008.5.1.4.1.1.1.1"
TEST_ROOT = "1.2.826.0.1.3680043.8.498."


def derived_uid(*parts: str) -> str:
    return str(generate_uid(prefix=TEST_ROOT, entropy_srcs=list(parts)))


def dx_monochrome2(rg1: pydicom.Dataset) -> pydicom.Dataset:
    """RG1 as a DX for presentation, MONOCHROME2, with a valid ImagerPixelSpacing (exercises TID 1603)."""
    ds = copy.deepcopy(rg1)
    top = 2**ds.BitsStored - 1
    ds.PixelData = (top - ds.pixel_array).astype(np.uint16).tobytes()
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.WindowCenter = top - float(rg1.WindowCenter)
    ds.SOPClassUID = DX_FOR_PRESENTATION
    ds.file_meta.MediaStorageSOPClassUID = DX_FOR_PRESENTATION
    ds.Modality = "DX"
    ds.PresentationIntentType = "FOR PRESENTATION"
    ds.ImagerPixelSpacing = [0.15, 0.15]
    del ds.PixelSpacing
    ds.SeriesInstanceUID = derived_uid("dx-series")
    ds.SOPInstanceUID = derived_uid("dx-instance")
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    return ds


def second_view(rg1: pydicom.Dataset) -> pydicom.Dataset:
    """Another image of RG1's study (mirrored), as a second view in a two-image study."""
    ds = copy.deepcopy(rg1)
    ds.PixelData = np.ascontiguousarray(ds.pixel_array[:, ::-1]).tobytes()
    ds.SOPInstanceUID = derived_uid("second-view")
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.InstanceNumber = 2
    return ds


def analysed(sources: list[pydicom.Dataset]) -> list[AnalysedImage]:
    detector = BaselineDetector()
    decoded = [decode_dataset(ds) for ds in sources]
    return [AnalysedImage(s, d, r) for s, d, r in zip(sources, decoded, detector.detect(decoded), strict=True)]


def context(
    images: list[AnalysedImage],
    equipment: EquipmentSettings | None = None,
    results: ResultsSettings | None = None,
    urgency: UrgencySettings | None = None,
    segmentations: bool = False,
) -> EncodeContext:
    return EncodeContext(
        images=images,
        provenance=BaselineDetector().provenance,
        equipment=equipment or EquipmentSettings(),
        results=results or ResultsSettings(),
        urgency=urgency or UrgencySettings(),
        segmentations=segmentations,
    )


def case_sources(name: str, rg1: Path, rg1_j2ki: Path) -> list[pydicom.Dataset]:
    base = pydicom.dcmread(rg1)
    return {
        "rg1": lambda: [base],
        "rg1-j2k-lossy": lambda: [pydicom.dcmread(rg1_j2ki)],
        "dx-monochrome2": lambda: [dx_monochrome2(base)],
        "two-image-study": lambda: [base, second_view(base)],
    }[name]()


CASES = ["rg1", "rg1-j2k-lossy", "dx-monochrome2", "two-image-study"]


def write_all(objects: list[EncodedObject], out: Path) -> dict[str, list[Path]]:
    paths: dict[str, list[Path]] = {}
    for obj in objects:
        paths.setdefault(obj.kind.value, []).append(obj.write(out))
    return paths


def content_items(items: pydicom.Sequence) -> list[pydicom.Dataset]:
    out = []
    for item in items:
        out.append(item)
        out.extend(content_items(item.get("ContentSequence", [])))
    return out
