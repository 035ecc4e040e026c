"""models.j2k_gpu: JPEG 2000 decoded by nvImageCodec; and worker.early_analysis.image_decoding: how a worker chooses it.

Without a GPU the same decoder class runs nvImageCodec's CPU backend, which checks everything but the device: the
stream taken, the values handed back, what falls back to the CPU path. The tests marked ``gpu`` run the GPU backend
against pydicom's decode and the detector's findings against a full CPU decode, within ``tests.helpers.j2k``'s
tolerance.
"""

from __future__ import annotations

import logging
import platform
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pydicom
import pytest
import torch
from pydicom.encaps import encapsulate

from config.settings import Settings, WorkerSettings
from models.baseline import BaselineDetector
from models.imaging import ImageDecoding, decode_dataset
from models.j2k import Codestream
from models.j2k_gpu import Jpeg2000Decoder, gpu_decoder, installed, stored_values
from tests.helpers.j2k import compressed, frame_of, same_findings
from worker.context import WorkerContext
from worker.early_analysis import image_decoding

# The gpu extra's wheels exist for Linux on x86-64 only (pyproject.toml's marker); elsewhere there is nothing to test.
pytestmark = pytest.mark.skipif(
    not (sys.platform == "linux" and platform.machine() == "x86_64"),
    reason="nvImageCodec (the gpu extra) is published for Linux x86-64 only",
)

RG1_STREAM = Codestream(rows=1955, columns=1841, components=1, precision=15, signed=False, levels=5)


@pytest.fixture(scope="module")
def on_cpu() -> Jpeg2000Decoder:
    return Jpeg2000Decoder(None)


@pytest.fixture
def fresh_gpu_decoders() -> Iterator[None]:
    gpu_decoder.cache_clear()
    yield
    gpu_decoder.cache_clear()


def test_the_gpu_extra_is_installed_here() -> None:
    assert installed(), "make install installs the gpu extra (nvImageCodec); without it these tests prove nothing"


def test_lossless_rg1_decodes_to_pydicoms_values(on_cpu: Jpeg2000Decoder, rg1_j2kr: Path) -> None:
    ds = pydicom.dcmread(rg1_j2kr)
    values = on_cpu(ds)
    assert values is not None and values.dtype == np.uint16 and values.flags.c_contiguous
    assert np.array_equal(values, ds.pixel_array)


@pytest.mark.parametrize("bits", [8, 12, 16])
def test_each_precision_decodes_to_its_own_values(on_cpu: Jpeg2000Decoder, tmp_path: Path, bits: int) -> None:
    """12 bits in 16: the stream's values, not scaled to the type's range."""
    ds = compressed(tmp_path, bits)
    values = on_cpu(ds)
    assert values is not None and np.array_equal(values, ds.pixel_array)


def test_what_it_does_not_take_is_left_to_the_cpu_path(
    on_cpu: Jpeg2000Decoder, rg1: Path, rg1_j2kr: Path, caplog: pytest.LogCaptureFixture
) -> None:
    assert on_cpu(pydicom.dcmread(rg1)) is None, "not JPEG 2000"
    frame = bytearray(frame_of(pydicom.dcmread(rg1_j2kr)))
    signed = pydicom.dcmread(rg1_j2kr)
    signed.PixelData = encapsulate([bytes(frame[:42]) + bytes([frame[42] | 0x80]) + bytes(frame[43:])])
    assert on_cpu(signed) is None, "signed samples"
    broken = pydicom.dcmread(rg1_j2kr)
    broken.PixelData = encapsulate([bytes(frame[: len(frame) // 3])])
    with caplog.at_level(logging.INFO, logger="models.j2k_gpu"):
        assert on_cpu(broken) is None, "a truncated stream: refused or raised, never passed on"
    assert "decoding on the CPU" in caplog.text


def test_values_that_are_not_the_streams_are_refused() -> None:
    rows, columns = RG1_STREAM.rows, RG1_STREAM.columns
    plane = np.zeros((rows, columns, 1), dtype=np.uint16)
    assert stored_values(plane, RG1_STREAM, "cpu") is not None, "one channel, squeezed"
    scaled = plane.copy()
    scaled[0, 0, 0] = 1 << 15  # 16-bit range from a 15-bit stream: scaled, not stored values
    assert stored_values(scaled, RG1_STREAM, "cpu") is None
    assert stored_values(np.zeros((rows, columns, 3), np.uint16), RG1_STREAM, "cpu") is None, "three channels"
    assert stored_values(np.zeros((rows, columns), np.float32), RG1_STREAM, "cpu") is None
    assert stored_values(np.zeros((rows // 2, columns // 2), np.uint16), RG1_STREAM, "cpu") is None


def test_the_decoded_image_is_that_of_pydicoms_decode(on_cpu: Jpeg2000Decoder, rg1_j2kr: Path) -> None:
    full = decode_dataset(pydicom.dcmread(rg1_j2kr))
    accelerated = decode_dataset(pydicom.dcmread(rg1_j2kr), accelerated=on_cpu)
    assert np.array_equal(accelerated.pixels, full.pixels) and accelerated.spacing_mm == full.spacing_mm


def test_a_stream_the_decoder_leaves_goes_the_reduced_path(rg1_j2kr: Path) -> None:
    asked: list[str] = []

    def refusing(ds: pydicom.Dataset) -> None:
        asked.append(str(ds.SOPInstanceUID))

    reduced = decode_dataset(pydicom.dcmread(rg1_j2kr), 512)
    decoded = ImageDecoding(long_side=512, accelerated=refusing)(pydicom.dcmread(rg1_j2kr))
    assert asked and np.array_equal(decoded.pixels, reduced.pixels)


def _context(device: str, gpu_decode: bool = True, reduced_decode: bool = True) -> WorkerContext:
    worker = WorkerSettings(device=device, gpu_decode=gpu_decode, reduced_decode=reduced_decode)
    # How images are decoded is read from the settings alone: no database or queue is reached.
    return WorkerContext(settings=Settings(worker=worker), session_factory=None, queue=None)  # type: ignore[arg-type]


def test_a_cpu_worker_decodes_reduced_or_in_full(fresh_gpu_decoders: None) -> None:
    detector = BaselineDetector()
    assert image_decoding(_context("cpu"), detector) == ImageDecoding(long_side=512)
    assert image_decoding(_context("cpu", reduced_decode=False), detector) == ImageDecoding()
    assert image_decoding(_context("cuda", gpu_decode=False), detector) == ImageDecoding(long_side=512)


def test_a_cuda_worker_decodes_on_its_gpu_where_a_decoder_starts(
    fresh_gpu_decoders: None, caplog: pytest.LogCaptureFixture
) -> None:
    """With a GPU: nvImageCodec there, in full. Without one, the decoder cannot start; said once, and the CPU path."""
    detector = BaselineDetector()
    with caplog.at_level(logging.WARNING, logger="models.j2k_gpu"):
        first = image_decoding(_context("cuda:0"), detector)
        second = image_decoding(_context("cuda:0"), detector)
    if torch.cuda.is_available():
        assert isinstance(first.accelerated, Jpeg2000Decoder) and first.accelerated.where == "cuda:0"
        assert first.long_side is None and second.accelerated is first.accelerated
    else:
        assert first == second == ImageDecoding(long_side=512)
        assert caplog.text.count("cannot start on cuda:0") == 1


@pytest.mark.gpu
def test_the_gpu_decodes_lossless_images_to_pydicoms_values(rg1_j2kr: Path, tmp_path: Path) -> None:
    decoder = Jpeg2000Decoder(0)
    for ds in (pydicom.dcmread(rg1_j2kr), *(compressed(tmp_path, bits) for bits in (8, 12, 16))):
        values = decoder(ds)
        assert values is not None and np.array_equal(values, ds.pixel_array)


@pytest.mark.gpu
@pytest.mark.parametrize("name", ["rg1_j2kr", "rg1_j2ki"])
def test_the_findings_of_a_gpu_decode_are_those_of_a_full_decode(name: str, request: pytest.FixtureRequest) -> None:
    path: Path = request.getfixturevalue(name)
    ds = pydicom.dcmread(path)
    values = Jpeg2000Decoder(0)(ds)
    assert values is not None
    lossy_difference = np.abs(values.astype(np.int32) - pydicom.dcmread(path).pixel_array.astype(np.int32))
    print(f"{name}: GPU decode against pydicom's: max {lossy_difference.max()}, mean {lossy_difference.mean():.4f}")
    detector = BaselineDetector()
    full = decode_dataset(pydicom.dcmread(path))
    on_gpu = decode_dataset(pydicom.dcmread(path), accelerated=Jpeg2000Decoder(0))
    same_findings(*detector.detect([full, on_gpu]))
