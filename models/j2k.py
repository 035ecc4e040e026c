"""JPEG 2000 decoded at the resolution a detector needs, not the whole image.

A JPEG 2000 code stream is a wavelet pyramid: each of its decomposition levels halves the image, and a decoder can stop
short of the finest ones. A detector that looks at 512 pixels gains nothing from a 2,000-pixel decode, whose whole
decode step costs 2 to 3.5 times as much as one that stops a level short (``bench/j2k_decode.py``).
``models.imaging`` brings the reduced image back to the source's size after its LUTs, so everything after the decode
(coordinates, geometry, the objects we write) is unchanged; only the detail finer than the detector's view is gone,
and ``tests/models/test_j2k.py`` shows that the findings stay the same within a stated tolerance.

Pillow (with OpenJPEG) decodes the reduced levels. A stream that is not a plain single-component code stream of
unsigned samples up to 16 bits, or that fails, is decoded whole by pydicom as before (``None`` here).
"""

from __future__ import annotations

import io
import logging
import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from PIL import Image
from pydicom import uid
from pydicom.dataset import Dataset
from pydicom.encaps import generate_frames

logger = logging.getLogger(__name__)

J2K_SYNTAXES = frozenset({uid.JPEG2000Lossless, uid.JPEG2000})
_SOC, _SIZ, _COD = b"\xff\x4f", b"\xff\x51", b"\xff\x52"


@dataclass(frozen=True)
class Codestream:
    """What the main header of a JPEG 2000 code stream says about the image."""

    rows: int
    columns: int
    components: int
    precision: int
    signed: bool
    levels: int
    """Decomposition levels: the stream can be decoded at 1/2, 1/4 … 1/2^levels of its size."""


def read_codestream(frame: bytes) -> Codestream | None:
    """The SIZ and COD facts of a raw code stream (as DICOM requires: no JP2 box around it), or None."""
    if frame[:4] != _SOC + _SIZ:
        return None
    siz = 2
    cod = frame.find(_COD, siz)
    if cod < 0 or len(frame) < max(siz + 41, cod + 10):
        return None
    # SIZ: marker, Lsiz, Rsiz, Xsiz, Ysiz, XOsiz, YOsiz, then the tiles' four, Csiz, and per component Ssiz.
    x_size, y_size, x_offset, y_offset = (int.from_bytes(frame[siz + 6 + 4 * i : siz + 10 + 4 * i]) for i in range(4))
    ssiz = frame[siz + 40]
    return Codestream(
        rows=y_size - y_offset,
        columns=x_size - x_offset,
        components=int.from_bytes(frame[siz + 38 : siz + 40]),
        precision=(ssiz & 0x7F) + 1,
        signed=bool(ssiz & 0x80),
        levels=frame[cod + 9],  # COD: marker, Lcod, Scod, SGcod (4 bytes), then the number of decomposition levels
    )


def reduction(stream: Codestream, long_side: int) -> int:
    """How many levels to leave out so that the long side stays at least ``long_side``.

    Pillow sizes a reduced image by rounding half up where OpenJPEG rounds up; a level where the two disagree for
    this image's size would fail, so it is not taken (one level down never disagrees)."""
    wanted = 0
    while wanted < stream.levels and math.ceil(max(stream.rows, stream.columns) / 2 ** (wanted + 1)) >= long_side:
        wanted += 1
    while wanted > 1 and not all(_rounding_agrees(n, wanted) for n in (stream.rows, stream.columns)):
        wanted -= 1
    return wanted


def _rounding_agrees(size: int, level: int) -> bool:
    power = 1 << level
    return (size + (power >> 1)) // power == -(-size // power)


def decode_reduced(ds: Dataset, long_side: int) -> npt.NDArray[np.uint16 | np.uint8] | None:
    """The stored values at a reduced size (1/2, 1/4 … of the source's), decoded from the fewest levels that keep
    ``long_side``; None where a full decode is needed (not JPEG 2000, no level to leave out, a stream this path does
    not take)."""
    try:
        taken = grayscale_stream(ds)
        if taken is None:
            return None
        frame, stream = taken
        levels = reduction(stream, long_side)
        return decode_levels(frame, stream, levels) if levels else None
    except Exception as exc:  # whatever Pillow or the stream raises: the full decode decides
        logger.info("reduced JPEG 2000 decode not possible (%s); decoding in full", type(exc).__name__)
        return None


def grayscale_stream(ds: Dataset) -> tuple[bytes, Codestream] | None:
    """The code stream of a single-frame JPEG 2000 image of one unsigned component up to 16 bits, the size the data
    set says, with its header facts; None for anything else (which pydicom decodes)."""
    if ds.file_meta.get("TransferSyntaxUID") not in J2K_SYNTAXES or int(ds.get("NumberOfFrames", 1) or 1) != 1:
        return None
    frame = next(generate_frames(ds.PixelData, number_of_frames=1))
    stream = read_codestream(frame)
    if stream is None or stream.components != 1 or stream.signed or stream.precision > 16:
        return None
    if (stream.rows, stream.columns) != (int(ds.Rows), int(ds.Columns)):
        return None
    return frame, stream


def decode_levels(frame: bytes, stream: Codestream, levels: int) -> npt.NDArray[np.uint16 | np.uint8]:
    with Image.open(io.BytesIO(frame)) as image:
        image.reduce = levels  # type: ignore[assignment,method-assign]  # the JPEG 2000 plugin's level setting
        image.load()
        values = np.asarray(image)
    if values.dtype == np.uint16 and stream.precision < 16:
        values = values >> (16 - stream.precision)  # Pillow scales samples of fewer bits up to 16
    return np.ascontiguousarray(values)
