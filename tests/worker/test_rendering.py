"""worker.encode.gsps and worker.encode.sc: what a reader sees: the GSPS rendered by DCMTK, and the overlay SC compared
pixel by pixel with the source."""

from __future__ import annotations

import subprocess
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
import pydicom

from db.models import ResultKind
from models.overlay import HEAT_FLOOR, layout_for
from models.preprocess import to_uint8
from models.protocol import ImageResult
from tests.helpers.encode_cases import analysed, context
from tests.helpers.peers import require_tool
from worker.encode.bundle import encode_study
from worker.encode.inputs import AnalysedImage
from worker.encode.sc import build_overlay_sc


def lung_and_spine_means(image: npt.NDArray[np.uint8]) -> tuple[float, float]:
    rows, cols = image.shape[:2]
    lung = image[rows // 3 : rows // 2, cols // 5 : cols // 3].mean()
    spine = image[rows // 3 : rows // 2, cols // 2 - 40 : cols // 2 + 40].mean()
    return float(lung), float(spine)


def test_gsps_rendered_by_dcmtk_is_not_inverted_against_the_source(rg1: Path, tmp_path: Path) -> None:
    require_tool("dcmp2pgm")
    require_tool("dcm2pnm")
    gsps = next(o for o in encode_study(context(analysed([pydicom.dcmread(rg1)]))) if o.kind is ResultKind.GSPS)
    gsps_path = gsps.write(tmp_path)
    subprocess.run(["dcm2pnm", "+Wi", "1", str(rg1), str(tmp_path / "source.pgm")], check=True, capture_output=True)
    subprocess.run(
        ["dcmp2pgm", "-p", str(gsps_path), str(rg1), str(tmp_path / "gsps.pgm")], check=True, capture_output=True
    )
    source = cv2.imread(str(tmp_path / "source.pgm"), cv2.IMREAD_GRAYSCALE)
    through_gsps = cv2.imread(str(tmp_path / "gsps.pgm"), cv2.IMREAD_GRAYSCALE)
    assert source is not None and through_gsps is not None and source.shape == through_gsps.shape
    source_lung, source_spine = lung_and_spine_means(source)
    gsps_lung, gsps_spine = lung_and_spine_means(through_gsps)
    assert source_lung < source_spine, "the source itself shows dark lungs"
    assert gsps_lung < gsps_spine, "the GSPS shows dark lungs too: it is not inverted"
    assert abs(gsps_lung - source_lung) < 25
    small = [
        cv2.resize(i, (256, 256), interpolation=cv2.INTER_AREA).astype(float).ravel() for i in (source, through_gsps)
    ]
    assert np.corrcoef(*small)[0, 1] > 0.95


def annotation_mask(image: AnalysedImage, rows: int, cols: int) -> npt.NDArray[np.bool_]:
    """Where the overlay may draw: banner, legend, each box's outline band and its caption line."""
    layout = layout_for(rows, cols, image.result.findings)
    mask = np.zeros((rows, cols), dtype=bool)
    for x0, y0, x1, y1 in (layout.banner, layout.legend):
        mask[y0:y1, x0:x1] = True
    band = layout.line + 1
    for finding in image.result.findings:
        assert finding.box is not None
        x0, y0, x1, y1 = (round(v) for v in finding.box.as_tuple())
        outer = mask[max(0, y0 - band) : y1 + band, max(0, x0 - band) : x1 + band]
        outer[:] = True
        inner_y0, inner_x0 = y0 + band + 1, x0 + band + 1
        if y1 - band - 1 > inner_y0 and x1 - band - 1 > inner_x0:
            mask[inner_y0 : y1 - band - 1, inner_x0 : x1 - band - 1] = False
        ax, ay = layout.label_anchor(finding.box.as_tuple(), rows)
        mask[
            max(0, int(ay) - 2) : int(ay) + 2 * layout.font_size, max(0, int(ax) - 2) : int(ax) + 14 * layout.font_size
        ] = True
    return mask


def test_sc_matches_the_windowed_source_outside_annotations(rg1: Path) -> None:
    (image,) = analysed([pydicom.dcmread(rg1)])
    sc = build_overlay_sc(image, context([image]), 1)
    rgb = sc.pixel_array
    source = to_uint8(image.decoded.pixels)
    rows, cols = source.shape
    changed = (rgb != source[:, :, None]).any(axis=-1)
    allowed = annotation_mask(image, rows, cols)
    assert changed.any(), "something was drawn"
    assert not (changed & ~allowed).any(), f"{int((changed & ~allowed).sum())} pixels changed outside annotations"
    assert (~allowed).mean() > 0.8, "most of the image is compared"
    for finding in image.result.findings:
        assert finding.box is not None
        x0, y0, x1, _y1 = (round(v) for v in finding.box.as_tuple())
        assert changed[y0 : y0 + 2, x0:x1].mean() > 0.9, "the box outline is drawn on its edge"


def test_heatmap_colours_only_where_the_model_looked(rg1: Path) -> None:
    (image,) = analysed([pydicom.dcmread(rg1)])
    rows, cols = image.decoded.pixels.shape
    heat = np.zeros((rows // 8, cols // 8), dtype=np.float32)
    heat[100:140, 60:100] = 1.0  # a hot square in the right mid lung
    result = ImageResult(abnormality_score=0.9, findings=(), heatmap=heat)
    sc = build_overlay_sc(AnalysedImage(image.source, image.decoded, result), context([image]), 1)
    rgb = sc.pixel_array
    source = to_uint8(image.decoded.pixels)
    changed = (rgb != source[:, :, None]).any(axis=-1)
    assert changed[100 * 8 + 16 : 140 * 8 - 16, 60 * 8 + 16 : 100 * 8 - 16].all(), "the hot region is coloured"
    cold = cv2.resize(heat, (cols, rows), interpolation=cv2.INTER_LINEAR) < HEAT_FLOOR
    layout = layout_for(rows, cols, result.findings)
    cold[: layout.banner[3], :] = False
    cold[layout.legend[1] :, : layout.legend[2]] = False
    assert not changed[cold].any(), "cold regions keep the source pixels"
