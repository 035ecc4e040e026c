"""models.j2k and models.imaging.decode_dataset(long_side=…): JPEG 2000 decoded only down to the resolution the
detector looks at, brought back to the source's size; the same findings as a full decode, within the tolerance
``tests.helpers.j2k`` states.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest

from models.baseline import BaselineDetector
from models.imaging import decode_dataset
from models.j2k import Codestream, decode_levels, decode_reduced, read_codestream, reduction
from models.preprocess import resize_long_side
from models.protocol import working_long_side
from tests.helpers.j2k import compressed, frame_of, same_findings


def test_the_code_stream_header_is_read(rg1_j2kr: Path) -> None:
    stream = read_codestream(frame_of(pydicom.dcmread(rg1_j2kr)))
    assert stream == Codestream(rows=1955, columns=1841, components=1, precision=15, signed=False, levels=5)
    assert read_codestream(b"\x00\x00\x00\x0cjP  \r\n\x87\n") is None, "a JP2 file, not a raw code stream"


@pytest.mark.parametrize(
    ("rows", "columns", "long_side", "levels"),
    [
        (2048, 2048, 512, 2),  # 512 exactly: two levels
        (2048, 1600, 500, 2),
        (2048, 2048, 256, 3),
        (2048, 2048, 4096, 0),  # the detector wants more than there is
        (1955, 1841, 512, 1),  # RG1: 978 ≥ 512 > 489
        (1955, 1841, 224, 1),  # three levels would do, but Pillow and OpenJPEG size those differently: one
        (4000, 4000, 16, 5),  # never more than the stream has
    ],
)
def test_the_levels_left_out(rows: int, columns: int, long_side: int, levels: int) -> None:
    stream = Codestream(rows=rows, columns=columns, components=1, precision=12, signed=False, levels=5)
    assert reduction(stream, long_side) == levels


def test_all_levels_decode_exactly_as_pydicom_does(rg1_j2kr: Path) -> None:
    """Pillow's samples, shifted back from 16 bits to the stream's 15, are pydicom's, value for value."""
    ds = pydicom.dcmread(rg1_j2kr)
    frame = frame_of(ds)
    stream = read_codestream(frame)
    assert stream is not None
    assert np.array_equal(decode_levels(frame, stream, 0), ds.pixel_array)


@pytest.mark.parametrize("bits", [8, 12, 16])
def test_a_reduced_decode_looks_like_the_full_one_at_the_detectors_size(tmp_path: Path, bits: int) -> None:
    ds = compressed(tmp_path, bits)
    reduced = decode_reduced(ds, 256)
    assert reduced is not None and reduced.shape == (256, 200), "two levels left out: 1024 / 4 = 256"
    small_full, _ = resize_long_side(ds.pixel_array.astype(np.float32) / (2**bits - 1), 256)
    assert float(np.abs(reduced.astype(np.float32) / (2**bits - 1) - small_full).mean()) < 0.005
    assert decode_dataset(ds, 256).pixels.shape == (1024, 800), "back at the source's size after the LUTs"


def test_what_this_path_does_not_take_is_decoded_in_full(tmp_path: Path, rg1: Path, rg1_j2kr: Path) -> None:
    assert decode_reduced(pydicom.dcmread(rg1), 256) is None, "not JPEG 2000"
    assert decode_reduced(pydicom.dcmread(rg1_j2kr), 4096) is None, "no level to leave out"
    broken = pydicom.dcmread(rg1_j2kr)
    frame = bytearray(frame_of(broken))
    broken.PixelData = pydicom.encaps.encapsulate([bytes(frame[: len(frame) // 3])])
    assert decode_reduced(broken, 256) is None, "a stream Pillow cannot read: the full decode decides"
    signed = pydicom.dcmread(rg1_j2kr)
    frame[42] |= 0x80  # Ssiz: signed samples
    signed.PixelData = pydicom.encaps.encapsulate([bytes(frame)])
    assert decode_reduced(signed, 256) is None


@pytest.mark.parametrize("name", ["rg1_j2kr", "rg1_j2ki"])
def test_the_findings_are_those_of_a_full_decode(name: str, request: pytest.FixtureRequest) -> None:
    path: Path = request.getfixturevalue(name)
    detector = BaselineDetector()
    long_side = working_long_side(detector)
    assert long_side == 512
    full = decode_dataset(pydicom.dcmread(path))
    reduced = decode_dataset(pydicom.dcmread(path), long_side)
    assert reduced.pixels.shape == full.pixels.shape and reduced.spacing_mm == full.spacing_mm
    assert not np.array_equal(reduced.pixels, full.pixels), "the reduced path really ran"
    same_findings(*detector.detect([full, reduced]))
