"""Header mutations as a hostile or broken sender puts them on the wire: one attribute's raw bytes replaced; and the
five reproducers of the fault campaign (each a value that once left a chest study with no SR)."""

from __future__ import annotations

import copy

from pydicom.datadict import dictionary_VR, tag_for_keyword
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset

# What the pipeline reads: the rules (dicom_node.rules), decoding (models.imaging) and encoding (worker.encode).
READ_BY_RULES = ["Modality", "BodyPartExamined", "ViewPosition", "StudyDescription", "PatientAge", "StudyDate"]
READ_BY_DECODING = [
    "PhotometricInterpretation", "Rows", "Columns", "BitsAllocated", "BitsStored", "HighBit", "PixelRepresentation",
    "SamplesPerPixel", "NumberOfFrames", "RescaleSlope", "RescaleIntercept", "WindowCenter", "WindowWidth",
    "VOILUTFunction", "PixelSpacing", "ImagerPixelSpacing",
]  # fmt: skip
READ_BY_ENCODING = [
    "SpecificCharacterSet", "PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyTime",
    "AccessionNumber", "ReferringPhysicianName", "StudyID", "SeriesNumber", "InstanceNumber", "TimezoneOffsetFromUTC",
    "PatientOrientation", "ImageLaterality", "ContentDate", "ContentTime", "InstitutionName", "Manufacturer",
]  # fmt: skip
READ = READ_BY_RULES + READ_BY_DECODING + READ_BY_ENCODING

REPRODUCERS = {
    "WindowWidth": b"-5",
    "VOILUTFunction": b"GARBAGE ",
    "PatientBirthDate": b"abcd",
    "StudyTime": b"1850E9",
    "SpecificCharacterSet": b"ISO_IR 999",
}


def mutate(source: Dataset, keyword: str, value: bytes | None) -> Dataset:
    """``source`` with one attribute replaced by raw bytes as a sender would put them on the wire (None: removed)."""
    ds = copy.deepcopy(source)
    tag = tag_for_keyword(keyword)
    assert tag is not None
    if value is None:
        if keyword in ds:
            del ds[keyword]
        return ds
    padded = value + (b" " if len(value) % 2 else b"")
    ds[tag] = RawDataElement(tag, dictionary_VR(tag), len(padded), padded, 0, False, True)
    return ds
