"""The DICOM Segmentation: one per analysed image with a boxed finding, one segment per finding, for viewers that show
SEG well (OHIF does; it does not render GSPS). Made only when a destination asks for SEG.

- A segment is the finding's box; where the detector gives a localisation heat (Grad-CAM), the part of the box where
  the heat reaches half its maximum there: the shape the model looked at.
- FRACTIONAL, OCCUPANCY, values 0 or 255, RLE Lossless: exact for a mask and small (about 360 KB for RG1's six
  segments). Not BINARY: OHIF 3's loader (@cornerstonejs/adapters 5.14) cannot unpack a bit-packed SEG whose packed
  length is odd and padded (RG1's), and highdicom will not RLE-encode BINARY. Not probabilities: the same loader
  refuses fractional values other than 0 and the maximum.
- Each segment carries the finding's code as its Segmented Property Type, the algorithm's identification, and the
  SR group's Tracking Identifier and UID, so the SR's groups and the segments name each other.
"""

from __future__ import annotations

import cv2
import highdicom as hd
import numpy as np
import numpy.typing as npt
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes
from pydicom.uid import UID, RLELossless

from models.codes import code_for
from models.protocol import Box, Finding
from worker.encode.header import algorithm_item, finish
from worker.encode.inputs import AnalysedImage, EncodeContext, finding_identifier
from worker.encode.uids import UIDKind, derive_uid, finding_tracking_uid

SEG_SERIES_NUMBER = 9005  # 9001 SR, 9002 SC, 9003 GSPS, 9004 our rejection KOS
OCCUPIED = 255
"""A pixel inside a segment: fully occupied (OCCUPANCY fraction 1)."""
HEAT_LEVEL = 0.5
"""A segment is where the heat reaches this fraction of its maximum inside the finding's box."""
CATEGORY = codes.SCT.MorphologicallyAbnormalStructure


def seg_uids(image: AnalysedImage, context: EncodeContext) -> tuple[UID, UID]:
    series = derive_uid(UIDKind.SEG_SERIES, context.study_instance_uid, context.provenance.output_key)
    instance = derive_uid(UIDKind.SEG_INSTANCE, image.token, context.provenance.output_key)
    return series, instance


def boxed(image: AnalysedImage) -> list[tuple[int, Finding]]:
    """(index among the image's findings, finding) for each finding with a box: the SR's group order."""
    return [(index, f) for index, f in enumerate(image.result.findings) if f.box is not None]


def _box_slices(box: Box, rows: int, columns: int) -> tuple[slice, slice]:
    """The pixels whose centres lie inside the box (a pixel (r, c) covers [c, c+1) × [r, r+1))."""
    x0, y0 = max(0, int(np.floor(box.x_min + 0.5))), max(0, int(np.floor(box.y_min + 0.5)))
    x1, y1 = min(columns, int(np.ceil(box.x_max - 0.5))), min(rows, int(np.ceil(box.y_max - 0.5)))
    return slice(y0, max(y0 + 1, y1)), slice(x0, max(x0 + 1, x1))


def _heat(image: AnalysedImage) -> npt.NDArray[np.float32] | None:
    heatmap = image.result.heatmap
    if heatmap is None:
        return None
    rows, columns = image.decoded.pixels.shape
    resized = cv2.resize(np.asarray(heatmap, dtype=np.float32), (columns, rows), interpolation=cv2.INTER_LINEAR)
    return np.asarray(np.clip(resized, 0.0, 1.0), dtype=np.float32)


def _masks(image: AnalysedImage, findings: list[tuple[int, Finding]]) -> npt.NDArray[np.uint8]:
    """(rows, columns, segments) of 0/1: inside each box, where the heat reaches ``HEAT_LEVEL`` of its maximum there,
    or the whole box without heat (or with a flat one); never an empty segment."""
    rows, columns = image.decoded.pixels.shape
    heat = _heat(image)
    masks = np.zeros((rows, columns, len(findings)), dtype=np.uint8)
    for k, (_, finding) in enumerate(findings):
        assert finding.box is not None
        ys, xs = _box_slices(finding.box, rows, columns)
        if heat is not None and float(heat[ys, xs].max()) > 0.0:
            inside = heat[ys, xs]
            masks[ys, xs, k] = inside >= HEAT_LEVEL * float(inside.max())
        else:
            masks[ys, xs, k] = 1
    return masks


def _description(
    number: int, index: int, finding: Finding, image: AnalysedImage, context: EncodeContext
) -> hd.seg.SegmentDescription:
    """Segment ``number`` for the image's finding ``index``: the SR group's identifier and UID, so each names the
    other."""
    code = code_for(finding.label)
    study_number = context.finding_number(image, index)
    identifier = finding_identifier(study_number, finding.label)[:64]
    return hd.seg.SegmentDescription(
        segment_number=number,
        segment_label=identifier,
        segmented_property_category=CATEGORY,
        segmented_property_type=hd.sr.CodedConcept(code.value, code.scheme, code.meaning),
        algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
        algorithm_identification=hd.AlgorithmIdentificationSequence(
            name=context.provenance.name[:64],
            version=context.provenance.version[:64],
            family=codes.DCM.ArtificialIntelligence,
        ),
        tracking_uid=finding_tracking_uid(
            str(image.source.SOPInstanceUID), context.provenance.output_key, study_number
        ),
        tracking_id=identifier,
    )


def _without_unknown_spacing(seg: hd.seg.Segmentation) -> None:
    """highdicom copies the source's Pixel Spacing into the Pixel Measures; a CR that says "0.000" (RG1: unknown)
    gets none, as the IOD allows for an image without a Frame of Reference, rather than a zero spacing."""
    shared = seg.SharedFunctionalGroupsSequence[0]
    measures = shared.get("PixelMeasuresSequence")
    if measures and any(float(v) <= 0 for v in measures[0].get("PixelSpacing", [1, 1])):
        del shared.PixelMeasuresSequence


IMAGE_AXES = [1, 0, 0, 0, 1, 0]


def _plane_orientation(seg: hd.seg.Segmentation, source: Dataset) -> None:
    """OHIF's SEG loader matches a segmentation to its image by the Plane Orientation and refuses one without it. A
    projection radiograph has none: the SEG states the image's own axes (what cornerstone assumes for such an image)
    and, like its source, no Frame of Reference, so no patient geometry is claimed."""
    shared = seg.SharedFunctionalGroupsSequence[0]
    if "PlaneOrientationSequence" in shared:
        return
    item = Dataset()
    item.ImageOrientationPatient = list(source.get("ImageOrientationPatient") or IMAGE_AXES)
    shared.PlaneOrientationSequence = [item]


def build_seg(image: AnalysedImage, context: EncodeContext, instance_number: int) -> hd.seg.Segmentation | None:
    """None when the image has no boxed finding (a segmentation needs a segment)."""
    findings = boxed(image)
    if not findings:
        return None
    masks = _masks(image, findings)
    series_uid, instance_uid = seg_uids(image, context)
    seg = hd.seg.Segmentation(
        source_images=[image.source],
        pixel_array=masks[np.newaxis].astype(np.float32),
        segmentation_type=hd.seg.SegmentationTypeValues.FRACTIONAL,
        fractional_type=hd.seg.SegmentationFractionalTypeValues.OCCUPANCY,
        max_fractional_value=OCCUPIED,
        segment_descriptions=[
            _description(number, index, finding, image, context) for number, (index, finding) in enumerate(findings, 1)
        ],
        series_instance_uid=series_uid,
        series_number=SEG_SERIES_NUMBER,
        sop_instance_uid=instance_uid,
        instance_number=instance_number,
        **context.made_by(),
        transfer_syntax_uid=RLELossless,
    )
    # highdicom draws the Dimension Organization UID at random: derived instead, so a re-run makes the same object.
    dimensions = derive_uid(UIDKind.SEG_DIMENSIONS, image.token, context.provenance.output_key)
    for item in (*seg.DimensionOrganizationSequence, *seg.DimensionIndexSequence):
        item.DimensionOrganizationUID = dimensions
    _without_unknown_spacing(seg)
    _plane_orientation(seg, image.source)
    # Type 2C in General Image without a Frame of Reference: the source's own, or empty (unknown), never guessed.
    seg.PatientOrientation = image.source.get("PatientOrientation") or ""
    finish(
        seg,
        image.source,
        context.equipment,
        f"{context.banner} SEG",
        algorithm_item(context.provenance, context.equipment),
    )
    return seg


def segment_numbers(image: AnalysedImage) -> dict[int, int]:
    """The image's finding index → its segment number, for the SR's Referenced Segment items."""
    return {index: number for number, (index, _) in enumerate(boxed(image), 1)}
