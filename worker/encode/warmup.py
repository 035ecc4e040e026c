"""The encoders warmed once when an analysis worker starts, so that its first study costs what every study costs.

The first objects a process builds pay for highdicom's module tables (JSON read on first use) and pydicom's first
conversions and writes: 0.31 s more than a later study (``bench/first_study.py``), which would fall on the first
study after every start, against issue 22's p50 target of 0.5 s. A synthetic radiograph with one boxed finding is
encoded into every kind of object and written to memory; nothing is stored, sent or recorded, and it carries no
patient.
"""

from __future__ import annotations

import io
import logging
import time

import numpy as np
from pydicom.dataset import Dataset
from pydicom.uid import ComputedRadiographyImageStorage, ExplicitVRLittleEndian, generate_uid

from config.settings import Settings
from db.models import ResultKind
from models.codes import FindingLabel
from models.imaging import DecodedImage
from models.protocol import Box, Finding, ImageResult, Provenance
from worker.encode.bundle import encode_study
from worker.encode.inputs import AnalysedImage, EncodeContext

logger = logging.getLogger(__name__)

SIDE = 256


def synthetic_radiograph() -> Dataset:
    """A 256-pixel CR with the header the encoders read, and nobody in it."""
    ds = Dataset()
    ds.SOPClassUID = ComputedRadiographyImageStorage
    ds.SOPInstanceUID = generate_uid()
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.PatientName = "WARM^UP"
    ds.PatientID = "WARMUP"
    ds.PatientBirthDate = ""
    ds.PatientSex = "O"
    ds.StudyDate, ds.StudyTime, ds.StudyID, ds.AccessionNumber = "20260101", "000000", "1", ""
    ds.ReferringPhysicianName = ""
    ds.Modality, ds.BodyPartExamined, ds.SeriesNumber, ds.InstanceNumber = "CR", "CHEST", 1, 1
    ds.ViewPosition, ds.PatientOrientation, ds.Manufacturer = "PA", ["L", "F"], ""
    ds.Rows = ds.Columns = SIDE
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.PixelSpacing = [0.5, 0.5]
    ds.PixelData = np.zeros((SIDE, SIDE), dtype=np.uint16).tobytes()
    ds.ensure_file_meta()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    return ds


def warm_up_context(settings: Settings, provenance: Provenance) -> EncodeContext:
    """The synthetic radiograph analysed, with one boxed finding, and a SEG asked for, as a destination may."""
    pixels = np.linspace(0, 1, SIDE * SIDE, dtype=np.float32).reshape(SIDE, SIDE)
    finding = Finding(FindingLabel.NODULE.value, 0.9, Box(64.0, 64.0, 128.0, 128.0))
    image = AnalysedImage(synthetic_radiograph(), DecodedImage(pixels, (0.5, 0.5)), ImageResult(0.9, (finding,)))
    return EncodeContext(
        images=[image],
        provenance=provenance,
        equipment=settings.equipment,
        results=settings.results,
        urgency=settings.urgency,
        segmentations=True,
    )


def warm_up_encoders(settings: Settings, provenance: Provenance) -> list[ResultKind]:
    """Encode and write the synthetic study the way a job does; returns the kinds of object made."""
    objects = encode_study(warm_up_context(settings, provenance))
    for encoded in objects:
        encoded.dataset.save_as(io.BytesIO(), enforce_file_format=True)
    return [encoded.kind for encoded in objects]


def warm_up(settings: Settings, provenance: Provenance) -> None:
    """``warm_up_encoders``, timed and logged; a failure is logged and left for the first study to meet."""
    started = time.perf_counter()
    try:
        warm_up_encoders(settings, provenance)
    except Exception as exc:  # the first real study says what is wrong, in its own words
        logger.warning("encoders not warmed up: %s", type(exc).__name__)
        return
    logger.info("encoders warmed up in %.0f ms", (time.perf_counter() - started) * 1000)
