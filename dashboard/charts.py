"""Bar charts for the overview, laid out here and drawn by one template macro (``_charts.html``): every chart has
both axes, ticks and a title with its unit, so a reader never guesses what a bar means."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

WIDTH, HEIGHT = 380.0, 150.0
LEFT, RIGHT, TOP, BOTTOM = 44.0, 8.0, 10.0, 34.0


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    tooltip: str


@dataclass(frozen=True)
class Tick:
    at: float
    text: str


@dataclass(frozen=True)
class BarChart:
    title: str
    y_title: str
    x_title: str
    bars: tuple[Bar, ...]
    y_ticks: tuple[Tick, ...]
    x_ticks: tuple[Tick, ...]
    width: float = WIDTH
    height: float = HEIGHT
    left: float = LEFT
    top: float = TOP
    bottom: float = HEIGHT - BOTTOM
    right: float = WIDTH - RIGHT


def nice_ceiling(value: float) -> float:
    """The axis maximum: 1, 2 or 5 times a power of ten, at least ``value`` (and at least 1)."""
    if value <= 1:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    return float(next(step * power for step in (1, 2, 5, 10) if step * power >= value))


def _number(value: float) -> str:
    return f"{value:g}" if value < 1000 else f"{value / 1000:g}k"


def bar_chart(
    title: str,
    values: Sequence[float | None],
    labels: Sequence[str],
    y_title: str,
    x_title: str,
    tooltip_unit: str,
    label_every: int = 1,
) -> BarChart:
    """One bar per value (None: no bar, as for a bucket without data); ``labels`` name the bars along the x axis,
    one every ``label_every``, and always the last."""
    peak = nice_ceiling(max((v for v in values if v is not None), default=0.0))
    plot_width, plot_height = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot = plot_width / max(len(values), 1)
    bars = []
    for index, value in enumerate(values):
        if value is None:
            continue
        height = plot_height * value / peak
        tooltip = f"{labels[index]}: {value:.3g} {tooltip_unit}"
        bars.append(Bar(LEFT + index * slot + slot * 0.1, TOP + plot_height - height, slot * 0.8, height, tooltip))
    y_ticks = tuple(Tick(TOP + plot_height * (1 - f), _number(peak * f)) for f in (0.0, 0.5, 1.0))
    x_ticks = tuple(
        Tick(LEFT + (i + 0.5) * slot, labels[i])
        for i in range(len(values))
        if i % label_every == 0 or i == len(values) - 1
    )
    return BarChart(title, y_title, x_title, tuple(bars), y_ticks, x_ticks)
