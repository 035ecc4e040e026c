"""Checks on a received instance before anything is written: identifiers, and pixel data that matches its header.

Each failed check is a Refusal with the DIMSE status and an Error Comment (at most 64 characters, no patient data).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from pathlib import Path

from pydicom import dcmread
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset

# The private reader leaves the file at the data set, where the deflated stream starts (pydicom is pinned below 4).
from pydicom.filereader import _read_file_meta_info, read_preamble
from pydicom.tag import Tag
from pydicom.uid import UID, DeflatedExplicitVRLittleEndian

from dicom_node.spool import is_valid_uid

PIXEL_DATA = Tag(0x7FE0, 0x0010)
UNDEFINED_LENGTH = 0xFFFFFFFF
DEFER_BYTES = 64 * 1024
INFLATE_CHUNK = 1024 * 1024
"""Values larger than this (the pixel data) stay on disk while the header is checked."""
MAX_DIMENSION = 16384
"""Rows or Columns above this are absurd for a radiograph (a 43 cm detector at 25 µm is 17,200 pixels)."""


class Status:
    """C-STORE statuses we answer with (PS3.4 Annex B.2.3)."""

    SUCCESS = 0x0000
    SOP_CLASS_NOT_SUPPORTED = 0x0122
    OUT_OF_RESOURCES = 0xA700
    DATASET_DOES_NOT_MATCH_SOP_CLASS = 0xA900
    CANNOT_UNDERSTAND = 0xC000
    CANNOT_PARSE = 0xC210
    UID_IN_OTHER_STUDY = 0xC211
    """The SOP Instance UID is already stored under another Study Instance UID."""


@dataclass(frozen=True)
class Refusal:
    status: int
    comment: str

    def as_response(self) -> Dataset:
        response = Dataset()
        response.Status = self.status
        response.ErrorComment = self.comment[:64]
        return response


def check_identity(ds: Dataset, sop_class_uid: str, sop_instance_uid: str) -> Refusal | None:
    """The request's UIDs must be well-formed and be the dataset's own; study and series UIDs must be usable."""
    if not is_valid_uid(sop_instance_uid):
        return Refusal(Status.CANNOT_UNDERSTAND, "Affected SOP Instance UID is not a valid UID")
    if str(ds.get("SOPInstanceUID", "")) != sop_instance_uid:
        return Refusal(Status.DATASET_DOES_NOT_MATCH_SOP_CLASS, "SOP Instance UID differs from the request")
    if str(ds.get("SOPClassUID", "")) != sop_class_uid:
        return Refusal(Status.DATASET_DOES_NOT_MATCH_SOP_CLASS, "SOP Class UID differs from the request")
    for keyword in ("StudyInstanceUID", "SeriesInstanceUID"):
        if not is_valid_uid(str(ds.get(keyword, ""))):
            return Refusal(Status.CANNOT_UNDERSTAND, f"{keyword} is missing or not a valid UID")
    return None


def check_size(path: Path, limit: int) -> Refusal | None:
    """The data set, inflated if it is deflated, must not be larger than ``limit`` bytes. A deflated stream is
    inflated in bounded chunks and counted, never held whole: a deflate bomb costs no memory."""
    too_large = Refusal(Status.OUT_OF_RESOURCES, f"data set larger than {limit // (1024 * 1024)} MiB")
    if path.stat().st_size > limit:
        return too_large
    with path.open("rb") as handle:
        read_preamble(handle, force=True)
        meta = _read_file_meta_info(handle)
        if meta.get("TransferSyntaxUID") != DeflatedExplicitVRLittleEndian:
            return None
        inflater = zlib.decompressobj(-zlib.MAX_WBITS)
        inflated = 0
        while chunk := handle.read(INFLATE_CHUNK):
            pending = chunk
            while pending:
                inflated += len(inflater.decompress(pending, INFLATE_CHUNK))
                if inflated > limit:
                    return too_large
                pending = inflater.unconsumed_tail
    return None


def read_received(path: Path) -> tuple[Dataset, int | None]:
    """The received file's data set with Pixel Data left on disk, and the number of pixel bytes actually present.

    The length is the declared one, cut to what the file really holds (a truncated transfer declares more than it
    sent); None for encapsulated (compressed) pixel data, whose fragments carry their own lengths.
    """
    ds = dcmread(path, defer_size=DEFER_BYTES)
    raw = ds.get_item(PIXEL_DATA, keep_deferred=True)
    if not isinstance(raw, RawDataElement) or raw.length == UNDEFINED_LENGTH:
        return ds, None
    if ds.file_meta.TransferSyntaxUID == DeflatedExplicitVRLittleEndian:
        # pydicom inflated the stream in memory, so offsets are not file offsets; a cut stream fails to inflate.
        return ds, int(raw.length)
    available = path.stat().st_size - int(raw.value_tell or 0)
    return ds, max(0, min(int(raw.length), available))


def check_pixels(ds: Dataset, transfer_syntax: UID, pixel_length: int | None) -> Refusal | None:
    """An image must carry pixel data of sane dimensions; uncompressed data must be exactly as long as they imply."""
    if PIXEL_DATA not in ds:
        return Refusal(Status.DATASET_DOES_NOT_MATCH_SOP_CLASS, "image without Pixel Data")
    try:
        rows, columns = int(ds.Rows), int(ds.Columns)
        samples = int(ds.get("SamplesPerPixel", 1) or 1)
        frames = int(ds.get("NumberOfFrames", 1) or 1)
        bits = int(ds.BitsAllocated)
    except (AttributeError, TypeError, ValueError):
        return Refusal(Status.CANNOT_UNDERSTAND, "Rows, Columns or Bits Allocated missing")
    if not (0 < rows <= MAX_DIMENSION and 0 < columns <= MAX_DIMENSION) or frames < 1 or bits not in (1, 8, 16, 32):
        return Refusal(Status.CANNOT_UNDERSTAND, f"implausible image geometry {rows}x{columns}")
    if transfer_syntax.is_compressed:
        return None
    expected_bits = rows * columns * samples * frames * bits
    expected = (expected_bits + 7) // 8
    if pixel_length not in (expected, expected + 1):  # one byte of padding makes an odd length even
        return Refusal(Status.CANNOT_UNDERSTAND, "Pixel Data length does not match Rows x Columns")
    return None
