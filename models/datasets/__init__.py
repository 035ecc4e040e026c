"""Readers for the chest X-ray datasets people download, each from a local folder (nothing is downloaded)."""

from __future__ import annotations

from pathlib import Path

from models.datasets.base import DatasetLayoutError, LabelledSet, Split, split_samples
from models.datasets.folders import read_covid, read_pneumonia
from models.datasets.generic import read_generic
from models.datasets.nih import read_nih
from models.datasets.vindr import read_vindr

LAYOUTS = ("nih", "vindr", "pneumonia", "covid", "csv")

__all__ = ["LAYOUTS", "DatasetLayoutError", "LabelledSet", "Split", "read_dataset", "split_samples"]


def read_dataset(layout: str, path: Path, vindr_boxes: str = "fuse", seed: int = 0) -> LabelledSet:
    """``path`` is the dataset's folder, or for ``csv`` the CSV file."""
    if layout == "nih":
        return read_nih(path, seed)
    if layout == "vindr":
        return read_vindr(path, vindr_boxes, seed)
    if layout == "pneumonia":
        return read_pneumonia(path)
    if layout == "covid":
        return read_covid(path)
    if layout == "csv":
        return read_generic(path)
    raise DatasetLayoutError(f"unknown dataset layout {layout!r}; known: {', '.join(LAYOUTS)}")
