"""Geometry shared by the SR and the GSPS."""

from __future__ import annotations


def closed_rectangle(box: tuple[float, float, float, float]) -> list[list[float]]:
    """A box as a closed 5-point polyline in (column, row) order, as viewers that draw polylines expect."""
    x0, y0, x1, y1 = box
    return [[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]
