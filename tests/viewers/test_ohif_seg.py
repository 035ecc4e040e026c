"""worker.encode.seg read by OHIF's own SEG loader (@cornerstonejs/adapters' Segmentation.generateToolState, run in
Node): every boxed finding of RG1, RG1 JPEG 2000 lossy, a DX image and a two-image study is one segment, with our
label and code, and its pixels inside the finding's box; a heat map shapes the segment within the box."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pydicom
import pytest

from models.codes import code_for
from tests.helpers.encode_cases import CASES, analysed, case_sources, context
from tests.helpers.ohif import read_seg_with_ohif
from worker.encode.inputs import AnalysedImage, finding_identifier
from worker.encode.seg import build_seg


def segments_shown(image: AnalysedImage, seg: pydicom.Dataset, tmp_path: Path) -> dict[str, object]:
    path = tmp_path / f"{image.source.SOPInstanceUID}.seg.dcm"
    seg.save_as(path, enforce_file_format=True)
    return read_seg_with_ohif(path, str(image.source.SOPInstanceUID), int(image.source.Rows), int(image.source.Columns))


@pytest.mark.parametrize("case", CASES)
def test_ohif_reads_one_segment_per_boxed_finding_inside_its_box(
    case: str, rg1: Path, rg1_j2ki: Path, tmp_path: Path
) -> None:
    images = analysed(case_sources(case, rg1, rg1_j2ki))
    encode = context(images, segmentations=True)
    for image in images:
        seg = build_seg(image, encode, 1)
        assert seg is not None
        shown = segments_shown(image, seg, tmp_path)
        assert shown["error"] is None, shown["error"]
        segments = shown["segments"]
        boxed = [(i, f) for i, f in enumerate(image.result.findings) if f.box is not None]
        assert isinstance(segments, list) and len(segments) == len(boxed)
        for segment, (index, finding) in zip(segments, boxed, strict=True):
            assert finding.box is not None
            assert segment["label"] == finding_identifier(encode.finding_number(image, index), finding.label)
            assert segment["type"] == code_for(finding.label).meaning
            extent = segment["extent"]
            assert extent is not None and extent["pixels"] > 0
            x0, y0, x1, y1 = finding.box.as_tuple()
            assert x0 - 0.5 <= extent["xMin"] and extent["xMax"] + 1 <= x1 + 0.5, (extent, finding.box)
            assert y0 - 0.5 <= extent["yMin"] and extent["yMax"] + 1 <= y1 + 0.5, (extent, finding.box)


def test_a_heat_map_shapes_each_segment_within_its_box(rg1: Path, rg1_j2ki: Path, tmp_path: Path) -> None:
    """The heat is hot in the top-left quarter of each box: each segment is that quarter, not the box."""
    (image,) = analysed(case_sources("rg1", rg1, rg1_j2ki))
    heat = np.zeros(image.decoded.pixels.shape, np.float32)
    boxes = [f.box for f in image.result.findings if f.box is not None]
    for box in boxes:
        x0, y0, x1, y1 = (round(v) for v in box.as_tuple())
        heat[y0 : (y0 + y1) // 2, x0 : (x0 + x1) // 2] = 1.0
    hot = replace(image, result=replace(image.result, heatmap=heat))
    seg = build_seg(hot, context([hot], segmentations=True), 1)
    assert seg is not None
    shown = segments_shown(hot, seg, tmp_path)
    assert shown["error"] is None
    for segment, box in zip(shown["segments"], boxes, strict=True):  # type: ignore[call-overload]
        extent = segment["extent"]
        assert extent["pixels"] > 0, "never an empty segment"
        assert extent["xMax"] < (box.x_min + box.x_max) / 2 + 1 and extent["yMax"] < (box.y_min + box.y_max) / 2 + 1
        assert extent["xMin"] >= box.x_min - 0.5 and extent["yMin"] >= box.y_min - 0.5
