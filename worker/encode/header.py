"""The header every result object shares: our equipment (never the modality's), UTF-8 text, a clear series
description, and creation times in the source's time zone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from importlib.metadata import PackageNotFoundError, version

import highdicom as hd
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes
from pydicom.uid import UID

from config.settings import EquipmentSettings
from models.protocol import Provenance
from worker.encode.uids import UIDKind, derive_uid

UTF8 = "ISO_IR 192"


def software_version() -> str:
    try:
        return version("cxr-pacs-worker")
    except PackageNotFoundError:
        return "0+unknown"


PROCESSING_ALGORITHM = hd.sr.CodedConcept("1630", "99IHE", "Processing Algorithm")
"""IHE AI Results (AIR) Rev 1.1, 6.5.3.1: the Purpose of Reference of the algorithm's Contributing Equipment item."""


def algorithm_device_uid(provenance: Provenance) -> UID:
    """The algorithm's Device UID: it follows the model's name, version and weights' sha256 (the baseline has no
    weights: its parameters) and its parameters, so it changes whenever the model or its operating thresholds do."""
    return derive_uid(UIDKind.ALGORITHM, provenance.output_key)


def algorithm_item(provenance: Provenance, equipment: EquipmentSettings) -> Dataset:
    """The AIR Contributing Equipment item naming the algorithm that made an object. Written by hand: highdicom's
    ContributingEquipment accepts only the DICOM CID 7005 purposes, and this one is IHE's (99IHE)."""
    item = Dataset()
    item.PurposeOfReferenceCodeSequence = [PROCESSING_ALGORITHM]
    item.Manufacturer = fit_bytes(equipment.manufacturer, 64)
    item.ManufacturerModelName = fit_bytes(provenance.name, 64)
    item.SoftwareVersions = fit_bytes(provenance.version, 64)
    item.DeviceUID = algorithm_device_uid(provenance)
    return item


def finish(
    ds: Dataset,
    source: Dataset,
    equipment: EquipmentSettings,
    series_description: str,
    algorithm: Dataset | None = None,
) -> None:
    """Our equipment (never the modality's), the algorithm's AIR item (``algorithm_item``; a KOS copies the one of the
    objects it withdraws), UTF-8 text, a clear series description, and consistent times."""
    ds.SpecificCharacterSet = UTF8
    ds.Manufacturer = equipment.manufacturer
    ds.ManufacturerModelName = equipment.model_name
    ds.DeviceSerialNumber = equipment.device_serial_number
    ds.SoftwareVersions = software_version()
    if equipment.institution_name:
        ds.InstitutionName = equipment.institution_name
    ds.SeriesDescription = fit_bytes(series_description, 64)
    _drop_acquisition_equipment(ds)
    if algorithm is not None:
        ds.ContributingEquipmentSequence = [*ds.get("ContributingEquipmentSequence", []), algorithm]
    _stamp_times(ds, source)


def _drop_acquisition_equipment(ds: Dataset) -> None:
    """Keep the modality's equipment out of our objects: highdicom lists it as contributing equipment.

    highdicom's SR and SC builders copy the source's manufacturer, model, serial number, station and institution into
    the Contributing Equipment Sequence as "Acquisition Equipment". Our objects identify only the software that made
    them (ours in General Equipment, highdicom as contributing); the source image is referenced by UID instead.
    """
    if "ContributingEquipmentSequence" not in ds:
        return
    acquisition = codes.DCM.AcquisitionEquipment.value
    kept = [
        item
        for item in ds.ContributingEquipmentSequence
        if all(purpose.CodeValue != acquisition for purpose in item.get("PurposeOfReferenceCodeSequence", []))
    ]
    if kept:
        ds.ContributingEquipmentSequence = kept
    else:
        del ds.ContributingEquipmentSequence


def fit_bytes(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` bytes of UTF-8 without splitting a character (validators count LO length in bytes)."""
    return text.encode("utf-8")[:limit].decode("utf-8", errors="ignore").rstrip()


def _stamp_times(ds: Dataset, source: Dataset) -> None:
    """TimezoneOffsetFromUTC applies to every DA/TM in an object: stamp ours in the source's offset, or in UTC."""
    offset = _parse_offset(str(source.get("TimezoneOffsetFromUTC", "") or ""))
    now = datetime.now(UTC).astimezone(offset if offset is not None else UTC)
    date, time = now.strftime("%Y%m%d"), now.strftime("%H%M%S")
    for prefix in ("InstanceCreation", "Content", "Series", "PresentationCreation"):
        if f"{prefix}Date" in ds:
            setattr(ds, f"{prefix}Date", date)
            setattr(ds, f"{prefix}Time", time)
    if offset is not None:
        ds.TimezoneOffsetFromUTC = source.TimezoneOffsetFromUTC


def _parse_offset(text: str) -> timezone | None:
    text = text.strip()
    if len(text) != 5 or text[0] not in "+-" or not text[1:].isdigit():
        return None
    minutes = int(text[1:3]) * 60 + int(text[3:5])
    return timezone(timedelta(minutes=minutes if text[0] == "+" else -minutes))
