"""models.imaging: decoding, the LUT pipeline and MONOCHROME1."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pydicom
import pytest

from models.imaging import UndecodableImageError, decode_dataset, decode_file, pixel_spacing_mm


def test_rg1_zero_spacing_means_unknown(rg1_dataset: pydicom.Dataset) -> None:
    assert [float(v) for v in rg1_dataset.PixelSpacing] == [0.0, 0.0]
    assert pixel_spacing_mm(rg1_dataset) is None


def test_imager_spacing_is_used_when_valid(rg1_dataset: pydicom.Dataset) -> None:
    ds = copy.deepcopy(rg1_dataset)
    del ds.PixelSpacing
    ds.ImagerPixelSpacing = [0.143, 0.144]
    assert pixel_spacing_mm(ds) == (0.143, 0.144)


def test_monochrome1_is_inverted_so_lungs_are_dark(rg1_dataset: pydicom.Dataset) -> None:
    decoded = decode_dataset(rg1_dataset)
    pixels = decoded.pixels
    assert pixels.dtype == np.float32 and pixels.shape == (1955, 1841)
    assert pixels.min() >= 0.0 and pixels.max() <= 1.0
    rows, cols = pixels.shape
    # The right lung (image left, mid height) is aerated and darker than the spine in the middle column.
    lung = pixels[rows // 3 : rows // 2, cols // 5 : cols // 3].mean()
    spine = pixels[rows // 3 : rows // 2, cols // 2 - 40 : cols // 2 + 40].mean()
    assert lung < spine


def test_j2k_lossless_decodes_identically(rg1: Path, rg1_j2kr: Path) -> None:
    assert np.array_equal(decode_file(rg1).pixels, decode_file(rg1_j2kr).pixels)


def test_colour_image_is_a_typed_error(rg1_dataset: pydicom.Dataset) -> None:
    ds = copy.deepcopy(rg1_dataset)
    ds.PhotometricInterpretation = "RGB"
    with pytest.raises(UndecodableImageError, match="photometric"):
        decode_dataset(ds)


def test_truncated_pixel_data_is_a_typed_error(rg1_dataset: pydicom.Dataset) -> None:
    ds = copy.deepcopy(rg1_dataset)
    ds.PixelData = ds.PixelData[:1000]
    with pytest.raises(UndecodableImageError, match="cannot be decoded"):
        decode_dataset(ds)


def test_the_fast_linear_window_matches_pydicom(rg1_dataset: pydicom.Dataset) -> None:
    """Our float32 LINEAR window is pydicom's apply_voi_lut, normalised, to within float32 rounding."""
    from pydicom.pixels.processing import apply_modality_lut, apply_voi_lut

    for centre, width in ((float(rg1_dataset.WindowCenter), float(rg1_dataset.WindowWidth)), (9000.0, 4000.0)):
        ds = copy.deepcopy(rg1_dataset)
        ds.WindowCenter, ds.WindowWidth = centre, width
        reference = apply_voi_lut(apply_modality_lut(ds.pixel_array, ds), ds).astype(np.float64)
        reference = 1.0 - (reference - reference.min()) / (reference.max() - reference.min())  # MONOCHROME1
        assert np.abs(decode_dataset(ds).pixels - reference).max() < 1e-5
