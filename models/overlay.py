"""Renders findings over the display-ready image: boxes, labels with scores, a heatmap, a legend and a banner.

Only the drawn strokes, the label text, the heat, the legend and the banner strip change pixels; everything else stays
the windowed source, so a reader can trust the overlay image as the original with marks on it. ``annotation_layout``
says where each of those lies, so that callers (and tests) can check it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
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
HEAT_FLOOR = 0.2
"""Heat below this is not drawn, so the image stays readable away from the model's attention."""
HEAT_ALPHA = 0.4
NO_FINDINGS_TEXT = "No findings above threshold"


def burnable(text: str) -> str:
    """The bundled font has Latin-1 glyphs only; typographic dashes become hyphens so nothing renders as a box."""
    return text.replace("\u2013", "-").replace("\u2014", "-").replace("\u2265", ">=")


def colour_for(label: str) -> tuple[int, int, int]:
    return LABEL_COLOURS.get(label, DEFAULT_COLOUR)


@dataclass(frozen=True)
class Layout:
    """Where annotations go on an image of a given size, in pixels: (x0, y0, x1, y1) rectangles, ends exclusive."""

    line: int
    font_size: int
    banner: tuple[int, int, int, int]
    legend: tuple[int, int, int, int]

    def label_anchor(self, box: tuple[float, float, float, float], rows: int) -> tuple[float, float]:
        """Top-left of a finding's caption: above its box, or below it when the box touches the top."""
        x0, y0, _, y1 = box
        above = y0 - self.font_size - 2 * self.line
        top = above if above > self.banner[3] else min(y1 + self.line, rows - self.font_size - 2 * self.line)
        return x0, top


def legend_lines(findings: Sequence[Finding]) -> int:
    """One line per label, or one line saying there are no findings."""
    return len({f.label for f in findings}) or 1


def layout_for(rows: int, cols: int, findings: Sequence[Finding]) -> Layout:
    return annotation_layout(rows, cols, legend_lines(findings))


def annotation_layout(rows: int, cols: int, legend_lines: int) -> Layout:
    font_size = max(12, round(min(rows, cols) / 45))
    pad = max(4, font_size // 3)
    line_height = font_size + pad
    legend_width = min(cols, 16 * font_size)
    legend_height = min(rows, legend_lines * line_height + 2 * pad)
    return Layout(
        line=max(2, round(min(rows, cols) / 400)),
        font_size=font_size,
        banner=(0, 0, cols, font_size + 2 * pad),
        legend=(0, rows - legend_height, legend_width, rows),
    )


def render_overlay(
    pixels: FloatImage, findings: Sequence[Finding], banner: str, heatmap: FloatImage | None = None
) -> RGBImage:
    """An RGB image the size of the source with heat, each finding's box and caption, a legend and a banner."""
    rows, cols = pixels.shape
    grey = to_uint8(pixels)
    base = np.stack([grey, grey, grey], axis=-1)
    if heatmap is not None:
        base = _blend_heat(base, heatmap)
    canvas = Image.fromarray(base, mode="RGB")
    draw = ImageDraw.Draw(canvas)
    boxed = [f for f in findings if f.box is not None]
    labels = sorted({f.label for f in findings})
    layout = layout_for(rows, cols, findings)
    font = _font(layout.font_size)
    for finding in boxed:
        assert finding.box is not None
        colour = colour_for(finding.label)
        x0, y0, x1, y1 = finding.box.as_tuple()
        draw.rectangle((x0, y0, x1 - 1, y1 - 1), outline=colour, width=layout.line)
        caption = f"{finding.label} {finding.probability:.2f}"
        draw.text(
            layout.label_anchor(finding.box.as_tuple(), rows),
            caption,
            font=font,
            fill=colour,
            stroke_width=1,
            stroke_fill=(0, 0, 0),
        )
    _draw_legend(draw, layout, font, findings, labels)
    x0, y0, x1, y1 = layout.banner
    draw.rectangle((x0, y0, x1 - 1, y1 - 1), fill=BANNER_BACKGROUND)
    pad = (y1 - y0 - layout.font_size) // 2
    draw.text((pad, pad), burnable(banner), font=font, fill=BANNER_TEXT)
    return np.asarray(canvas, dtype=np.uint8).copy()


def _blend_heat(base: RGBImage, heatmap: FloatImage) -> RGBImage:
    rows, cols = base.shape[:2]
    heat: FloatImage = np.asarray(
        cv2.resize(np.clip(heatmap, 0, 1).astype(np.float32), (cols, rows), interpolation=cv2.INTER_LINEAR),
        dtype=np.float32,
    )
    colour = cv2.applyColorMap(to_uint8(heat), cv2.COLORMAP_JET)[:, :, ::-1]
    alpha = np.where(heat >= HEAT_FLOOR, HEAT_ALPHA, 0.0).astype(np.float32)[:, :, None]
    blended = base.astype(np.float32) * (1 - alpha) + colour.astype(np.float32) * alpha
    return np.clip(blended + 0.5, 0, 255).astype(np.uint8)


def _draw_legend(
    draw: ImageDraw.ImageDraw,
    layout: Layout,
    font: ImageFont.FreeTypeFont,
    findings: Sequence[Finding],
    labels: list[str],
) -> None:
    x0, y0, x1, y1 = layout.legend
    draw.rectangle((x0, y0, x1 - 1, y1 - 1), fill=BANNER_BACKGROUND)
    pad = max(4, layout.font_size // 3)
    y = y0 + pad
    if not findings:
        draw.text((x0 + pad, y), NO_FINDINGS_TEXT, font=font, fill=BANNER_TEXT)
        y += layout.font_size + pad
    for label in labels:
        count = sum(1 for f in findings if f.label == label)
        swatch = (x0 + pad, y + 2, x0 + pad + layout.font_size - 4, y + layout.font_size - 2)
        draw.rectangle(swatch, fill=colour_for(label))
        draw.text((x0 + 2 * pad + layout.font_size, y), f"{label} ({count})", font=font, fill=(255, 255, 255))
        y += layout.font_size + pad


def _font(size: int) -> ImageFont.FreeTypeFont:
    font = ImageFont.load_default(size=size)
    if not isinstance(font, ImageFont.FreeTypeFont):
        raise RuntimeError("Pillow was built without FreeType; overlay text needs it")
    return font
