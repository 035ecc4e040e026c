"""Decoding: from a DICOM dataset or an image file to a display-ready array.

The result is float32 in [0, 1], brighter meaning denser (MONOCHROME2 sense), after the Modality LUT, the VOI LUT or
window, and MONOCHROME1 inversion. Coordinates are unchanged: pixel (row, column) of the array is that of the source.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
import pydicom
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.pixels.processing import apply_modality_lut, apply_voi_lut

from models.j2k import decode_reduced

logger = logging.getLogger(__name__)

FloatImage = npt.NDArray[np.float32]
StoredValues = Callable[[Dataset], npt.NDArray[np.uint16 | np.uint8] | None]
"""A decoder that may take a data set's pixel data (its stored values at full size), or leave it (None) to the rest."""

DICOM_SUFFIXES = frozenset({".dcm", ".dicom", ""})
RASTER_SUFFIXES = frozenset({".png", ".jpg", ".jpeg"})


class UndecodableImageError(ValueError):
    """The pixel data cannot be turned into an image; the message says why (no patient data in it)."""


@dataclass(frozen=True)
class DecodedImage:
    pixels: FloatImage
    """Display-ready, float32 in [0, 1], shape (rows, columns)."""
    spacing_mm: tuple[float, float] | None
    """(row, column) spacing in mm, or None when missing or zero: measurements are then unavailable."""


def pixel_spacing_mm(ds: Dataset) -> tuple[float, float] | None:
    """PixelSpacing, else ImagerPixelSpacing; zero, negative or malformed values mean unknown."""
    for keyword in ("PixelSpacing", "ImagerPixelSpacing"):
        value = ds.get(keyword)
        if value is None:
            continue
        try:
            row, col = (float(v) for v in value)
        except (TypeError, ValueError):
            continue
        if row > 0 and col > 0:
            return row, col
    return None


def _normalise(values: npt.NDArray[np.floating], low: float, high: float) -> FloatImage:
    if high <= low:
        return np.zeros(values.shape, dtype=np.float32)
    out = (values.astype(np.float32) - np.float32(low)) / np.float32(high - low)
    return np.clip(out, 0.0, 1.0, out=out)


def decode_dataset(ds: Dataset, long_side: int | None = None, accelerated: StoredValues | None = None) -> DecodedImage:
    """Apply Modality LUT, VOI LUT/window and MONOCHROME1 inversion to a single-frame grayscale image.

    ``accelerated`` (the GPU's JPEG 2000 decoder, ``models.j2k_gpu``) is asked first. With ``long_side`` (what the
    detector looks at), a JPEG 2000 image is otherwise decoded only down to the level that keeps that many pixels along
    its long side (``models.j2k``), and brought back to its own size after the LUTs: the array's pixel coordinates are
    the source's either way."""
    photometric = str(ds.get("PhotometricInterpretation", ""))
    if photometric not in ("MONOCHROME1", "MONOCHROME2"):
        raise UndecodableImageError(f"unsupported photometric interpretation {photometric or 'missing'}")
    if int(ds.get("NumberOfFrames", 1) or 1) != 1:
        raise UndecodableImageError("multi-frame images are not supported")
    try:
        full = accelerated(ds) if accelerated is not None else None
        reduced = decode_reduced(ds, long_side) if long_side and full is None else None
        stored = full if full is not None else ds.pixel_array if reduced is None else reduced
    except Exception as exc:  # pydicom raises many types for bad or undecodable pixel data
        raise UndecodableImageError(f"pixel data cannot be decoded: {type(exc).__name__}: {exc}") from exc
    if stored.ndim != 2:
        raise UndecodableImageError(f"expected one grayscale frame, got array shape {stored.shape}")
    try:
        windowed = _display_values(stored, ds)
    except Exception as exc:  # a LUT or window pydicom cannot apply (width below 1, unknown VOI LUT Function...)
        raise UndecodableImageError(
            f"the Modality LUT, VOI LUT or window cannot be applied ({type(exc).__name__})"
        ) from exc
    pixels = _normalise(windowed, float(np.min(windowed)), float(np.max(windowed)))
    if photometric == "MONOCHROME1":
        np.subtract(np.float32(1.0), pixels, out=pixels)
    if reduced is not None:
        size = (int(ds.Columns), int(ds.Rows))
        pixels = cv2.resize(pixels, size, interpolation=cv2.INTER_LINEAR).astype(np.float32, copy=False)
    return DecodedImage(pixels=np.ascontiguousarray(pixels, dtype=np.float32), spacing_mm=pixel_spacing_mm(ds))


def _display_values(stored: npt.NDArray[np.generic], ds: Dataset) -> npt.NDArray[np.floating]:
    """Stored values through the Modality LUT, then the VOI LUT or window."""
    modality = apply_modality_lut(stored, ds)
    window = _linear_window(ds)
    if window is not None:
        return _apply_linear_window(modality, *window)
    result: npt.NDArray[np.floating] = apply_voi_lut(modality, ds) if _has_voi(ds) else modality
    return result


def _linear_window(ds: Dataset) -> tuple[float, float] | None:
    """(centre, width) when the VOI is a plain LINEAR window (the usual case); None for anything pydicom must do."""
    if "VOILUTSequence" in ds or "WindowCenter" not in ds or "WindowWidth" not in ds:
        return None
    if str(ds.get("VOILUTFunction", "LINEAR") or "LINEAR").upper() != "LINEAR":
        return None
    try:
        # Several windows may be offered; the first is the default, as pydicom's apply_voi_lut takes it.
        centre, width = (float(v[0] if isinstance(v, MultiValue) else v) for v in (ds.WindowCenter, ds.WindowWidth))
    except (TypeError, ValueError, IndexError):
        return None
    return (centre, width) if width > 1 else None


def _apply_linear_window(values: npt.NDArray[np.generic], centre: float, width: float) -> FloatImage:
    """PS3.3 C.11.2.1.2.1 LINEAR, to [0, 1], in float32: the same mapping as pydicom's, without its float64 passes."""
    out = values.astype(np.float32)
    out -= np.float32(centre - 0.5)
    out /= np.float32(width - 1)
    out += np.float32(0.5)
    return np.clip(out, 0.0, 1.0, out=out)


def _has_voi(ds: Dataset) -> bool:
    return "VOILUTSequence" in ds or ("WindowCenter" in ds and "WindowWidth" in ds)


def read_dataset(path: Path, header_only: bool = False) -> Dataset:
    """The dataset at ``path``; ``header_only`` stops before the pixel data (for references and headers)."""
    try:
        return pydicom.dcmread(path, stop_before_pixels=header_only)
    except Exception as exc:
        raise UndecodableImageError(f"not a readable DICOM file ({type(exc).__name__})") from exc


def decode_raster(path: Path) -> DecodedImage:
    """A PNG or JPEG file, as an ML engineer would try one; spacing is unknown."""
    raw = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if raw is None:
        raise UndecodableImageError("not a readable PNG/JPEG image")
    if raw.ndim == 3:
        raw = cv2.cvtColor(raw, cv2.COLOR_BGRA2GRAY if raw.shape[2] == 4 else cv2.COLOR_BGR2GRAY)
    values = np.asarray(raw, dtype=np.float32)
    high = float(np.iinfo(np.dtype(raw.dtype.str)).max) if raw.dtype.kind in "ui" else float(values.max())
    return DecodedImage(pixels=_normalise(values, 0.0, high), spacing_mm=None)


def decode_file(path: Path) -> DecodedImage:
    if path.suffix.lower() in RASTER_SUFFIXES:
        return decode_raster(path)
    return decode_dataset(read_dataset(path))


@dataclass(frozen=True)
class ImageDecoding:
    """How a worker decodes its images for a detector: on the GPU where it has a decoder there, else reduced to the
    detector's view where that is set, else in full. Its ``long_side`` keys what early analysis keeps."""

    long_side: int | None = None
    accelerated: StoredValues | None = None

    def __call__(self, ds: Dataset) -> DecodedImage:
        return decode_dataset(ds, self.long_side, self.accelerated)
