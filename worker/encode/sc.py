"""The overlay Secondary Capture: the source at full size with boxes, labels and a burned-in banner."""

from __future__ import annotations

import highdicom as hd
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes
from pydicom.uid import UID, ExplicitVRLittleEndian

from models.overlay import render_overlay
from worker.encode.common import AnalysedImage, EncodeContext, finish
from worker.encode.uids import UIDKind, derive_uid

SC_SERIES_NUMBER = 9002


def sc_uids(image: AnalysedImage, context: EncodeContext) -> tuple[UID, UID]:
    series = derive_uid(UIDKind.SC_SERIES, context.study_instance_uid, context.provenance.model_id)
    instance = derive_uid(UIDKind.SC_INSTANCE, str(image.source.SOPInstanceUID), context.provenance.model_id)
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
    pixels = render_overlay(image.decoded.pixels, image.result.findings, context.banner)
    series_uid, instance_uid = sc_uids(image, context)
    orientation = source.get("PatientOrientation")
    sc = hd.sc.SCImage.from_ref_dataset(
        ref_dataset=source,
        pixel_array=pixels,
        photometric_interpretation=hd.PhotometricInterpretationValues.RGB,
        bits_allocated=8,
        coordinate_system=hd.CoordinateSystemNames.PATIENT,
        series_instance_uid=series_uid,
        series_number=SC_SERIES_NUMBER,
        sop_instance_uid=instance_uid,
        instance_number=instance_number,
        manufacturer=context.equipment.manufacturer,
        patient_orientation=tuple(orientation) if orientation and len(orientation) == 2 else ("L", "F"),
        transfer_syntax_uid=ExplicitVRLittleEndian,
    )
    sc.BurnedInAnnotation = "YES"
    sc.SourceImageSequence = [_source_image_reference(source)]
    sc.ImageComments = context.banner
    if source.get("BodyPartExamined"):
        sc.BodyPartExamined = source.BodyPartExamined
    _carry_lossy_compression(sc, source)
    finish(sc, source, context, f"{context.banner} overlay")
    return sc


def _carry_lossy_compression(sc: Dataset, source: Dataset) -> None:
    """Pixels derived from a lossy source are lossy too; say so, with the source's ratio and method."""
    if str(source.get("LossyImageCompression", "00")) != "01":
        return
    sc.LossyImageCompression = "01"
    if "LossyImageCompressionRatio" in source:
        sc.LossyImageCompressionRatio = source.LossyImageCompressionRatio
    if "LossyImageCompressionMethod" in source:
        sc.LossyImageCompressionMethod = source.LossyImageCompressionMethod
