"""Preprocessing shared by every detector and by training: resize with an exact inverse, CLAHE, denoising."""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from models.imaging import FloatImage

U8Image = npt.NDArray[np.uint8]


@dataclass(frozen=True)
class Resize:
    """An isotropic scale from source pixels to working pixels; boxes map back exactly."""

    scale: float
    source_shape: tuple[int, int]

    def to_source(self, x: float, y: float) -> tuple[float, float]:
        rows, cols = self.source_shape
        return min(max(x / self.scale, 0.0), float(cols)), min(max(y / self.scale, 0.0), float(rows))


def resize_long_side(image: FloatImage, long_side: int) -> tuple[FloatImage, Resize]:
    """Scale so the longer side is ``long_side`` pixels, keeping the aspect ratio (area interpolation)."""
    rows, cols = image.shape
    scale = long_side / max(rows, cols)
    size = (max(1, round(cols * scale)), max(1, round(rows * scale)))
    resized = cv2.resize(image, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    # The effective scale per axis differs from ``scale`` by under half a pixel; use the column scale for both.
    effective = size[0] / cols
    return resized.astype(np.float32, copy=False), Resize(scale=effective, source_shape=(rows, cols))


def to_uint8(image: FloatImage) -> U8Image:
    scaled: FloatImage = np.clip(image * np.float32(255.0) + np.float32(0.5), 0, 255)
    return scaled.astype(np.uint8)


def clahe(image: U8Image, clip_limit: float = 2.0, tiles: int = 8) -> U8Image:
    """Contrast-limited adaptive histogram equalisation, as the project's origin pipelines used."""
    return np.asarray(cv2.createCLAHE(clipLimit=clip_limit, tileGridSize=(tiles, tiles)).apply(image), dtype=np.uint8)


def denoise(image: FloatImage, sigma: float = 1.0) -> FloatImage:
    return cv2.GaussianBlur(image, (0, 0), sigma).astype(np.float32, copy=False)


@dataclass(frozen=True)
class Letterbox:
    """Source pixels → a square model input: one isotropic scale, then centred padding. Invertible for boxes."""

    scale: float
    pad_x: int
    pad_y: int
    size: int
    source_shape: tuple[int, int]

    def to_model(self, box: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
        x0, y0, x1, y1 = box
        s = self.scale
        return x0 * s + self.pad_x, y0 * s + self.pad_y, x1 * s + self.pad_x, y1 * s + self.pad_y

    def to_source(self, box: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
        """Model-input coordinates back to source pixels, clipped to the source image."""
        rows, cols = self.source_shape
        x0, y0, x1, y1 = box
        s = self.scale

        def clip(value: float, high: int) -> float:
            return min(max(value, 0.0), float(high))

        return (
            clip((x0 - self.pad_x) / s, cols),
            clip((y0 - self.pad_y) / s, rows),
            clip((x1 - self.pad_x) / s, cols),
            clip((y1 - self.pad_y) / s, rows),
        )

    @property
    def content(self) -> tuple[slice, slice]:
        """The (rows, columns) of the model input that hold the image, not the padding."""
        rows, cols = self.source_shape
        height, width = round(rows * self.scale), round(cols * self.scale)
        return slice(self.pad_y, self.pad_y + height), slice(self.pad_x, self.pad_x + width)


def letterbox(image: FloatImage, size: int, fill: float = 0.0) -> tuple[FloatImage, Letterbox]:
    """Fit ``image`` into ``size``×``size`` keeping its aspect ratio, padding the short side equally with ``fill``."""
    rows, cols = image.shape
    scale = size / max(rows, cols)
    width, height = max(1, round(cols * scale)), max(1, round(rows * scale))
    resized = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    pad_x, pad_y = (size - width) // 2, (size - height) // 2
    canvas = np.full((size, size), fill, dtype=np.float32)
    canvas[pad_y : pad_y + height, pad_x : pad_x + width] = resized
    # Per-axis scales differ from ``scale`` by under half a pixel over the whole image; one scale keeps boxes square.
    return canvas, Letterbox(scale=width / cols, pad_x=pad_x, pad_y=pad_y, size=size, source_shape=(rows, cols))


_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _letterbox_pool() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=min(32, os.cpu_count() or 1), thread_name_prefix="letterbox")
        return _pool


def _forget_pool_after_fork() -> None:
    # A forked child (Celery's prefork pool) inherits the executor but not its threads.
    global _pool, _pool_lock
    _pool, _pool_lock = None, threading.Lock()


os.register_at_fork(after_in_child=_forget_pool_after_fork)


def letterbox_all(images: Sequence[FloatImage], size: int) -> list[tuple[FloatImage, Letterbox]]:
    """``letterbox`` for a batch, one image per thread.

    OpenCV's area resize of a radiograph (a few milliseconds for 2,000 × 2,000 pixels) runs on one core and releases
    the GIL, so on a GPU worker it, not the network, bounded batched throughput until the images were spread over
    the cores.
    """
    if len(images) < 2:
        return [letterbox(image, size) for image in images]
    return list(_letterbox_pool().map(lambda image: letterbox(image, size), images))
