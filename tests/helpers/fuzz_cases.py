"""Fuzz inputs for the receive and decode paths, as a hostile network sends them (``bench/fuzz.py``): one family per
way a data set or a PDU can be broken, each case made deterministically from a seed.

The bases are small copies of the pydicom-data radiographs (a quarter of RG1's size, uncompressed and JPEG 2000, and
RG3), so that thousands of cases go over real associations in minutes. File meta information is kept intact: a
sender's C-STORE request carries its own SOP class, instance and transfer syntax; everything after it is fair game.
"""

from __future__ import annotations

import io
import random
import struct
from collections.abc import Callable
from dataclasses import dataclass

import pydicom
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.uid import JPEG2000Lossless

from tests.helpers.mutations import READ, mutate

FILE_FAMILIES = (
    "byte_flip",
    "truncate",
    "wrong_vr",
    "absurd_length",
    "traversal_uid",
    "deep_sequence",
    "garbage_fragments",
    "bad_charset",
)
FAMILIES = (*FILE_FAMILIES, "raw_pdu")

TRAVERSAL_UIDS = [
    "../../../../tmp/cxr-fuzz-escape",
    "/tmp/cxr-fuzz-absolute",
    "1.2.3/../../../escape",
    "..",
    ".",
    "1.2.3\\..\\..\\escape",
    "1.2." + "9" * 80,
    "1.2.3\x00.4",
    "~/.ssh/authorized_keys",
]
CHARACTER_SETS = [b"ISO_IR 999", b"ISO 2022 IR 87\\ISO 2022 IR 999", b"\\\\\\", b"ISO_IR 192", b"GB18030", b"\x1b$B"]
HOSTILE_TEXT = [b"\xff\xfe\xfd\xfc", b"\x1b$B\x1b(J\x1b$)C", b"Doe^" + b"\x80" * 40, b"\x00" * 8, b"=" * 64]


@dataclass(frozen=True)
class Case:
    family: str
    number: int
    data: bytes
    """A DICOM file (preamble, file meta, data set) for a C-STORE; a raw PDU stream for ``raw_pdu``."""
    base: str


def _encoded(ds: Dataset) -> bytes:
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def _small(name: str, scale: int = 4) -> Dataset:
    ds = pydicom.dcmread(str(get_testdata_file(name)))
    pixels = ds.pixel_array[::scale, ::scale].copy()
    ds.Rows, ds.Columns = pixels.shape
    ds.PixelData = pixels.tobytes()
    return ds


def bases() -> dict[str, Dataset]:
    """chest (RG1, uncompressed), chest_j2k (RG1, JPEG 2000 lossless), other (RG3, not a chest)."""
    chest = _small("RG1_UNCR.dcm")
    j2k = _small("RG1_UNCR.dcm")
    j2k.compress(JPEG2000Lossless, j2k.pixel_array)
    return {"chest": chest, "chest_j2k": j2k, "other": _small("RG3_UNCR.dcm")}


def dataset_offset(data: bytes) -> int:
    """Where the data set starts: after the preamble, the DICM prefix and the File Meta group (its group length)."""
    (group_length,) = struct.unpack_from("<I", data, 140)
    return 144 + group_length


def _fresh_uids(ds: Dataset, rng: random.Random) -> Dataset:
    """Each case its own study and instance, so that a refusal is about the case, not an earlier one."""
    suffix = f"{rng.getrandbits(60)}"
    ds.StudyInstanceUID = f"1.2.826.0.1.3680043.8.498.7.{suffix}"
    ds.SeriesInstanceUID = ds.StudyInstanceUID + ".1"
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = ds.StudyInstanceUID + ".1.1"
    return ds


def byte_flip(ds: Dataset, rng: random.Random) -> bytes:
    data = bytearray(_encoded(ds))
    start = dataset_offset(bytes(data))
    for _ in range(rng.randint(1, 16)):
        data[rng.randrange(start, len(data))] ^= 1 << rng.randrange(8)
    return bytes(data)


def truncate(ds: Dataset, rng: random.Random) -> bytes:
    data = _encoded(ds)
    return data[: rng.randrange(dataset_offset(data), len(data))]


def wrong_vr(ds: Dataset, rng: random.Random) -> bytes:
    """A value of another VR's form in an attribute the pipeline reads (binary in text, text in binary)."""
    value = rng.choice(
        [struct.pack("<d", rng.uniform(-1e308, 1e308)), b"\x00\xff" * rng.randint(1, 9), b"ABC", b"-1e999",
         bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 64))), b"\\" * 17, b""]
    )  # fmt: skip
    return _encoded(mutate(ds, rng.choice(READ), value))


def absurd_length(ds: Dataset, rng: random.Random) -> bytes:
    """One element's length field replaced: far past the end, odd, or the undefined length where it is not allowed."""
    data = bytearray(_encoded(ds))
    start = dataset_offset(bytes(data))
    element = rng.choice([e for e in ds if e.tag.group > 0x0002])
    header = struct.pack("<HH", element.tag.group, element.tag.element) + element.VR.encode()
    at = data.find(header, start)
    if at < 0:
        return bytes(data)
    if element.VR in ("OB", "OW", "OF", "SQ", "UT", "UN", "UC", "UR", "OD", "OL", "OV"):
        struct.pack_into("<I", data, at + 8, rng.choice([0xFFFFFFF0, 0x7FFFFFFF, 0xFFFFFFFF, 0x40000001]))
    else:
        struct.pack_into("<H", data, at + 6, rng.choice([0xFFFF, 0xFFFE, 0x7FFF, 0x0001]))
    return bytes(data)


def traversal_uid(ds: Dataset, rng: random.Random) -> bytes:
    hostile = rng.choice(TRAVERSAL_UIDS)
    keyword = rng.choice(["StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"])
    setattr(ds, keyword, hostile)
    if keyword == "SOPInstanceUID":
        ds.file_meta.MediaStorageSOPInstanceUID = hostile
    return _encoded(ds)


def deep_sequence(ds: Dataset, rng: random.Random) -> bytes:
    """A private sequence nested ``depth`` items deep (undefined lengths), just before the pixel data."""
    depth = rng.choice([64, 512, 4096, 20000])
    open_sq = struct.pack("<HH", 0x7FDF, 0x1000) + b"SQ\x00\x00" + b"\xff\xff\xff\xff"
    open_item = struct.pack("<HHI", 0xFFFE, 0xE000, 0xFFFFFFFF)
    close_item = struct.pack("<HHI", 0xFFFE, 0xE00D, 0)
    close_sq = struct.pack("<HHI", 0xFFFE, 0xE0DD, 0)
    nested = (open_sq + open_item) * depth + (close_item + close_sq) * depth
    creator = struct.pack("<HH", 0x7FDF, 0x0010) + b"LO" + struct.pack("<H", 4) + b"FUZZ"
    data = _encoded(ds)
    at = data.find(struct.pack("<HH", 0x7FE0, 0x0010), dataset_offset(data))
    return data[:at] + creator + nested + data[at:]


def garbage_fragments(ds: Dataset, rng: random.Random) -> bytes:
    """JPEG 2000 pixel data with its codestream damaged: bytes flipped, a fragment replaced, or cut short."""
    data = bytearray(_encoded(ds))
    at = data.find(struct.pack("<HH", 0x7FE0, 0x0010) + b"OB", dataset_offset(bytes(data)))
    body = at + 12
    how = rng.choice(["flip", "replace", "cut", "offset_table"])
    if how == "flip":
        for _ in range(rng.randint(1, 64)):
            data[rng.randrange(body + 16, len(data) - 8)] ^= 0xFF
    elif how == "replace":
        data[body + 16 : len(data) - 8] = bytes(rng.getrandbits(8) for _ in range(len(data) - 8 - body - 16))
    elif how == "cut":
        return bytes(data[: rng.randrange(body + 8, len(data))])
    else:
        struct.pack_into("<I", data, body + 4, rng.choice([4, 0xFFFFFFF0, 7]))
    return bytes(data)


def bad_charset(ds: Dataset, rng: random.Random) -> bytes:
    ds = mutate(ds, "SpecificCharacterSet", rng.choice(CHARACTER_SETS))
    for keyword in rng.sample(["PatientName", "StudyDescription", "InstitutionName", "PatientID"], 2):
        ds = mutate(ds, keyword, rng.choice(HOSTILE_TEXT))
    return _encoded(ds)


def raw_pdu(rng: random.Random) -> bytes:
    """Bytes a broken or hostile peer opens a connection with: any PDU type, any length, any payload."""
    pdu_type = rng.choice([0x01, 0x02, 0x04, 0x05, 0x07, 0x00, 0x08, 0xFF])
    payload = bytes(rng.getrandbits(8) for _ in range(rng.choice([0, 4, 68, 300, 4096])))
    length = rng.choice([len(payload), 0, 0xFFFFFFFF, len(payload) + 1000, 64 * 1024 * 1024])
    if pdu_type == 0x01 and rng.random() < 0.5:  # an A-ASSOCIATE-RQ whose fixed part is right and items are not
        payload = struct.pack(">HH", 1, 0) + b"CXR_AI".ljust(16) + b"FUZZ".ljust(16) + bytes(32) + payload
        length = len(payload)
    return struct.pack(">BBL", pdu_type, 0, length) + payload


FILE_MUTATORS: dict[str, Callable[[Dataset, random.Random], bytes]] = {
    "byte_flip": byte_flip,
    "truncate": truncate,
    "wrong_vr": wrong_vr,
    "absurd_length": absurd_length,
    "traversal_uid": traversal_uid,
    "deep_sequence": deep_sequence,
    "garbage_fragments": garbage_fragments,
    "bad_charset": bad_charset,
}


def make_case(number: int, seed: int, sources: dict[str, Dataset]) -> Case:
    """Case ``number`` of the campaign ``seed``: families in turn, bases at random (JPEG 2000 for fragments)."""
    rng = random.Random(f"{seed}:{number}")
    family = FAMILIES[number % len(FAMILIES)]
    if family == "raw_pdu":
        return Case(family, number, raw_pdu(rng), "-")
    base = "chest_j2k" if family == "garbage_fragments" else rng.choice(list(sources))
    for _ in range(5):  # pydicom will not write some values (a NUL in a character set): draw again
        ds = _fresh_uids(pydicom.dcmread(io.BytesIO(_encoded(sources[base]))), rng)
        try:
            return Case(family, number, FILE_MUTATORS[family](ds, rng), base)
        except (ValueError, TypeError, LookupError, OverflowError):
            continue
    return Case("byte_flip", number, byte_flip(ds, rng), base)
