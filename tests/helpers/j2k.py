"""JPEG 2000 cases and the stated tolerance of a decode against pydicom's full one, for ``tests/models/test_j2k.py``
(reduced decode) and ``tests/models/test_j2k_gpu.py`` (nvImageCodec)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
from pydicom import uid
from pydicom.encaps import generate_frames

from models.protocol import ImageResult

# The stated tolerance of a reduced (or GPU) decode against a full one, for the baseline detector on RG1 in both
# JPEG 2000 syntaxes: the same findings (label for label, in score order), boxes overlapping by IoU ≥ 0.9, each
# probability within 0.03 and the abnormality score within 0.01. Measured for the reduced decode: boxes identical or
# 4 pixels apart, probabilities at most 0.025 apart (a Mass that sat 0.547 became 0.522), the abnormality score 0.003.
BOX_IOU = 0.9
PROBABILITY = 0.03
ABNORMALITY = 0.01


def frame_of(ds: pydicom.Dataset) -> bytes:
    return next(generate_frames(ds.PixelData, number_of_frames=1))


def compressed(tmp: Path, bits: int, rows: int = 1024, columns: int = 800) -> pydicom.Dataset:
    """A synthetic radiograph, smooth with a few sharp discs, JPEG 2000 lossless at ``bits`` bits."""
    y, x = np.mgrid[0:rows, 0:columns]
    image = 0.5 + 0.3 * np.sin(x / 90.0) * np.cos(y / 70.0)
    for cy, cx, r in ((300, 200, 40), (700, 550, 60)):
        image[(y - cy) ** 2 + (x - cx) ** 2 < r * r] = 0.95
    stored = np.round(image * (2**bits - 1)).astype(np.uint8 if bits <= 8 else np.uint16)
    ds = pydicom.Dataset()
    ds.file_meta = pydicom.dataset.FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = uid.ExplicitVRLittleEndian
    ds.Rows, ds.Columns, ds.SamplesPerPixel = rows, columns, 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = stored.itemsize * 8, bits, bits - 1, 0
    ds.PixelData = stored.tobytes()
    ds.compress(uid.JPEG2000Lossless, stored, encoding_plugin="pylibjpeg")
    path = tmp / f"synthetic-{bits}.dcm"
    ds.save_as(path, enforce_file_format=False)
    return pydicom.dcmread(path, force=True)


def same_findings(full: ImageResult, reduced: ImageResult) -> None:
    assert abs(full.abnormality_score - reduced.abnormality_score) <= ABNORMALITY
    assert len(full.findings) == len(reduced.findings)
    for finding in full.findings:
        match = max(
            (r for r in reduced.findings if r.label == finding.label and r.box and finding.box),
            key=lambda r: r.box.iou(finding.box) if r.box and finding.box else 0.0,
        )
        assert match.box and finding.box and match.box.iou(finding.box) >= BOX_IOU
        assert abs(match.probability - finding.probability) <= PROBABILITY
