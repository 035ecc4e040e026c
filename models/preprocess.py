"""Preprocessing shared by every detector and by training: resize with an exact inverse, CLAHE, denoising."""

from __future__ import annotations

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
