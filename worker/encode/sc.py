"""The overlay Secondary Capture: the source at full size with heat, boxes, labels, a legend and a burned-in banner."""

from __future__ import annotations

import highdicom as hd
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.sr.codedict import codes
from pydicom.uid import UID, ExplicitVRLittleEndian, JPEG2000Lossless, JPEGBaseline8Bit, JPEGLSLossless

from models.overlay import render_overlay
from worker.encode.header import algorithm_item, finish
from worker.encode.inputs import AnalysedImage, EncodeContext
from worker.encode.uids import UIDKind, derive_uid

SC_SERIES_NUMBER = 9002
JPEG_METHOD = "ISO_10918_1"
ENCODINGS: dict[str, tuple[UID, str]] = {
    "none": (ExplicitVRLittleEndian, "RGB"),
    "jpeg-ls": (JPEGLSLossless, "RGB"),
    "jpeg2000": (JPEG2000Lossless, "YBR_RCT"),  # the reversible colour transform: lossless
    "jpeg": (JPEGBaseline8Bit, "YBR_FULL_422"),
}
"""``results.sc_compression``: the transfer syntax and photometric interpretation of each choice."""


def sc_uids(image: AnalysedImage, context: EncodeContext) -> tuple[UID, UID]:
    series = derive_uid(UIDKind.SC_SERIES, context.study_instance_uid, context.provenance.output_key)
    instance = derive_uid(UIDKind.SC_INSTANCE, image.token, context.provenance.output_key)
    return series, instance


def _source_image_reference(source: Dataset) -> Dataset:
    item = Dataset()
    item.ReferencedSOPClassUID = source.SOPClassUID
    item.ReferencedSOPInstanceUID = source.SOPInstanceUID
    purpose = Dataset()
    code = codes.DCM.SourceImageForImageProcessingOperation
    purpose.CodeValue = code.value
    purpose.CodingSchemeDesignator = code.scheme_designator
    purpose.CodeMeaning = code.meaning
    item.PurposeOfReferenceCodeSequence = [purpose]
    return item


def build_overlay_sc(image: AnalysedImage, context: EncodeContext, instance_number: int) -> hd.sc.SCImage:
    source = image.source
    pixels = render_overlay(image.decoded.pixels, image.result.findings, context.alert_banner, image.result.heatmap)
    series_uid, instance_uid = sc_uids(image, context)
    orientation = source.get("PatientOrientation")
    jpeg = context.results.sc_compression == "jpeg"
    syntax, photometric = ENCODINGS[context.results.sc_compression]
    sc = hd.sc.SCImage.from_ref_dataset(
        ref_dataset=source,
        pixel_array=pixels,
        photometric_interpretation=photometric,
        bits_allocated=8,
        coordinate_system=hd.CoordinateSystemNames.PATIENT,
        series_instance_uid=series_uid,
        series_number=SC_SERIES_NUMBER,
        sop_instance_uid=instance_uid,
        instance_number=instance_number,
        manufacturer=context.equipment.manufacturer,
        patient_orientation=tuple(orientation) if orientation and len(orientation) == 2 else ("L", "F"),
        transfer_syntax_uid=syntax,
    )
    sc.BurnedInAnnotation = "YES"
    sc.SourceImageSequence = [_source_image_reference(source)]
    sc.ImageComments = context.alert_banner
    if source.get("BodyPartExamined"):
        sc.BodyPartExamined = source.BodyPartExamined
    _record_lossy_compression(sc, source, pixels.nbytes if jpeg else None)
    finish(
        sc,
        source,
        context.equipment,
        f"{context.banner} overlay",
        algorithm_item(context.provenance, context.equipment),
    )
    return sc


def _record_lossy_compression(sc: Dataset, source: Dataset, raw_bytes: int | None) -> None:
    """Lossy history accumulates: a lossy source, our own JPEG encoding, or both, with every ratio and method."""
    ratios: list[str] = []
    methods: list[str] = []
    if str(source.get("LossyImageCompression", "00")) == "01":
        ratios += [str(v) for v in _values(source.get("LossyImageCompressionRatio"))]
        methods += [str(v) for v in _values(source.get("LossyImageCompressionMethod"))]
    if raw_bytes is not None:
        ratios.append(f"{raw_bytes / max(1, len(sc.PixelData)):.2f}"[:16])
        methods.append(JPEG_METHOD)
    if not ratios and not methods:
        return
    sc.LossyImageCompression = "01"
    if ratios:
        sc.LossyImageCompressionRatio = ratios
    if methods:
        sc.LossyImageCompressionMethod = methods


def _values(value: object) -> list[object]:
    if value is None:
        return []
    return list(value) if isinstance(value, MultiValue | list | tuple) else [value]
