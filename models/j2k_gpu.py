"""JPEG 2000 decoded on the analysis GPU: NVIDIA's nvImageCodec with its nvJPEG2000 backend (the ``gpu`` extra).

On the CPU a 2,000-pixel lossless radiograph takes about half a second to decode, several times the detector's pass
(``bench/j2k_decode.py``); ``models.j2k`` cuts that by stopping a level short. Where the worker's device is a CUDA GPU,
the code stream is decoded there instead, in full: nvImageCodec's Python API has no reduced-resolution decode, and the
full image is what the overlay is drawn on anyway. The decoded values come back to the host for the LUTs, so
everything after the decode is the CPU path's.

The same checks as the reduced path decide what is taken (``models.j2k.grayscale_stream``): one frame, one unsigned
component of up to 16 bits, the size the data set says. A decoder that cannot start, a stream it refuses, or values
that are not the stream's own (shape, type, beyond its precision) give ``None``, and the image is decoded on the CPU.

nvImageCodec also decodes on the CPU (its OpenCV backend). The tests use that backend to check everything here but
the GPU itself; the tests marked ``gpu`` check the GPU backend against pydicom's decode on a machine with one.
"""

from __future__ import annotations

import functools
import importlib.util
import logging
import threading
from typing import Any

import numpy as np
import numpy.typing as npt
from pydicom.dataset import Dataset

from models.j2k import Codestream, grayscale_stream

logger = logging.getLogger(__name__)

MODULE = "nvidia.nvimgcodec"


def installed() -> bool:
    """Whether nvImageCodec is importable (the ``gpu`` extra)."""
    try:
        return importlib.util.find_spec(MODULE) is not None
    except ModuleNotFoundError:  # the ``nvidia`` namespace itself is absent
        return False


class Jpeg2000Decoder:
    """One nvImageCodec decoder, on a CUDA device (its index) or, with ``None``, on the CPU. Callable on a data set:
    its stored values at full size, or ``None`` where the CPU path should decode it."""

    def __init__(self, device_index: int | None) -> None:
        codec: Any = importlib.import_module(MODULE)
        self._codec = codec
        if device_index is None:
            self.where = "cpu"
            backend, device_id = codec.CPU_ONLY, codec.NVIMGCODEC_DEVICE_CPU_ONLY
        else:
            self.where = f"cuda:{device_index}"
            backend, device_id = codec.GPU_ONLY, device_index
        self._decoder = codec.Decoder(device_id=device_id, backends=[codec.Backend(backend)])
        # The stream's own values: no EXIF turn, no colour conversion, no scaling to 8 bits.
        self._params = codec.DecodeParams(
            apply_exif_orientation=False, color_spec=codec.UNCHANGED, allow_any_depth=True
        )
        self._lock = threading.Lock()  # one decode at a time per decoder: its buffers and stream are its own

    def __call__(self, ds: Dataset) -> npt.NDArray[np.uint16 | np.uint8] | None:
        try:
            taken = grayscale_stream(ds)
            if taken is None:
                return None
            frame, stream = taken
            with self._lock:
                image = self._decoder.decode(self._codec.CodeStream(frame), params=self._params)
                values = None if image is None else np.asarray(image.cpu())
        except Exception as exc:  # whatever the codec or the stream raises: the CPU decodes it
            logger.info("JPEG 2000 decode on %s not possible (%s); decoding on the CPU", self.where, type(exc).__name__)
            return None
        if values is None:
            logger.info("JPEG 2000 decode on %s refused the stream; decoding on the CPU", self.where)
            return None
        return stored_values(values, stream, self.where)


def stored_values(values: npt.NDArray[Any], stream: Codestream, where: str) -> npt.NDArray[np.uint16 | np.uint8] | None:
    """The decoder's output as one frame of the stream's own values, or None where it is not that."""
    if values.ndim == 3 and values.shape[2] == 1:
        values = values[:, :, 0]
    if values.shape != (stream.rows, stream.columns) or values.dtype not in (np.uint8, np.uint16):
        logger.info("JPEG 2000 decode on %s gave %s %s; decoding on the CPU", where, values.dtype, values.shape)
        return None
    if values.size and int(values.max()) >= 1 << stream.precision:
        # Scaled to the type's range rather than the stream's precision: not the stored values the LUTs expect.
        logger.info("JPEG 2000 decode on %s gave values beyond %d bits; decoding on the CPU", where, stream.precision)
        return None
    return np.ascontiguousarray(values)


@functools.cache
def gpu_decoder(device_index: int) -> Jpeg2000Decoder | None:
    """This process's decoder on the CUDA device, made once; None where nvImageCodec is not installed or cannot
    start there (said once, at warning level: the node still works, only slower for JPEG 2000)."""
    if not installed():
        logger.info("nvImageCodec is not installed (the gpu extra): JPEG 2000 is decoded on the CPU")
        return None
    try:
        return Jpeg2000Decoder(device_index)
    except Exception as exc:  # no driver, a device it cannot use, libraries that do not load
        logger.warning("JPEG 2000 decoder cannot start on cuda:%d (%s): decoded on the CPU", device_index, exc)
        return None
