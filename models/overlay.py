"""Renders findings over the display-ready image: boxes, labels with scores, and a banner.

Only the drawn strokes and the banner strip change pixels; everything else stays the windowed source, so a reader can
trust the overlay image as the original with marks on it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageDraw, ImageFont

from models.imaging import FloatImage
from models.preprocess import to_uint8
from models.protocol import Finding

RGBImage = npt.NDArray[np.uint8]

LABEL_COLOURS: dict[str, tuple[int, int, int]] = {
    "Nodule": (255, 200, 0),
    "Mass": (255, 64, 64),
}
DEFAULT_COLOUR = (0, 220, 255)
BANNER_BACKGROUND = (0, 0, 0)
BANNER_TEXT = (255, 255, 0)


def burnable(text: str) -> str:
    """The bundled font has Latin-1 glyphs only; typographic dashes become hyphens so nothing renders as a box."""
    return text.replace("\u2013", "-").replace("\u2014", "-").replace("\u2265", ">=")


def render_overlay(pixels: FloatImage, findings: Sequence[Finding], banner: str) -> RGBImage:
    """An RGB image the size of the source, with each finding's box and label and a banner on top."""
    rows, cols = pixels.shape
    grey = to_uint8(pixels)
    canvas = Image.fromarray(np.stack([grey, grey, grey], axis=-1), mode="RGB")
    draw = ImageDraw.Draw(canvas)
    line = max(2, round(min(rows, cols) / 400))
    font = _font(max(12, round(min(rows, cols) / 45)))
    for finding in findings:
        if finding.box is None:
            continue
        colour = LABEL_COLOURS.get(finding.label, DEFAULT_COLOUR)
        box = finding.box
        draw.rectangle((box.x_min, box.y_min, box.x_max - 1, box.y_max - 1), outline=colour, width=line)
        caption = f"{finding.label} {finding.probability:.2f}"
        text_y = box.y_min - font.size - 2 * line if box.y_min > font.size + 2 * line else box.y_max + line
        draw.text((box.x_min, text_y), caption, font=font, fill=colour, stroke_width=1, stroke_fill=(0, 0, 0))
    _draw_banner(draw, burnable(banner), font, cols)
    return np.asarray(canvas, dtype=np.uint8).copy()


def _font(size: int) -> ImageFont.FreeTypeFont:
    font = ImageFont.load_default(size=size)
    if not isinstance(font, ImageFont.FreeTypeFont):
        raise RuntimeError("Pillow was built without FreeType; overlay text needs it")
    return font


def _draw_banner(draw: ImageDraw.ImageDraw, text: str, font: ImageFont.FreeTypeFont, width: int) -> None:
    pad = max(4, font.size // 3)
    height = font.size + 2 * pad
    draw.rectangle((0, 0, width - 1, height - 1), fill=BANNER_BACKGROUND)
    draw.text((pad, pad), text, font=font, fill=BANNER_TEXT)


def banner_height(rows: int, cols: int) -> int:
    """Rows covered by the banner strip (tests compare pixels below it with the source)."""
    size = max(12, round(min(rows, cols) / 45))
    return size + 2 * max(4, size // 3)
