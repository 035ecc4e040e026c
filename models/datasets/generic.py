"""A site's own labels as one CSV: ``path,labels[,x_min,y_min,x_max,y_max,box_label][,patient][,split]``.

- ``path``: the image (DICOM, PNG or JPEG), relative to the CSV's folder;
- ``labels``: image-level findings separated by ``|``, empty for no finding; names that are the project's finding
  labels (``models.codes.FindingLabel``) are reported by a trained model, others are trained on only;
- a box in source pixels, optionally; repeat the path on more rows for more boxes (``box_label`` defaults to the only
  label of the row);
- ``patient`` keeps one patient's images in one split; ``split`` (train, validation, test) fixes it.
"""

from __future__ import annotations

import csv
from pathlib import Path

from models.codes import GENERIC_LABELS
from models.datasets.base import Annotation, DatasetLayoutError, LabelledSet, Sample, Split, require, sorted_labels
from models.protocol import Box

BOX_COLUMNS = ("x_min", "y_min", "x_max", "y_max")


def _box(row: dict[str, str], labels: frozenset[str], line: int) -> Annotation | None:
    if not all(row.get(k) for k in BOX_COLUMNS):
        return None
    label = row.get("box_label") or (next(iter(labels)) if len(labels) == 1 else "")
    if not label:
        raise DatasetLayoutError(f"line {line}: a box needs box_label when the row has {len(labels)} labels")
    return Annotation(label, Box(*(float(row[k]) for k in BOX_COLUMNS)))


def read_generic(csv_path: Path) -> LabelledSet:
    require(csv_path, "label CSV")
    merged: dict[Path, Sample] = {}
    with csv_path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        if reader.fieldnames is None or not {"path", "labels"} <= set(reader.fieldnames):
            raise DatasetLayoutError(f"{csv_path.name}: the header needs at least path and labels")
        for line, row in enumerate(reader, start=2):
            path = csv_path.parent / row["path"]
            if not path.is_file():
                raise DatasetLayoutError(f"line {line}: image {row['path']} not found")
            labels = frozenset(v.strip() for v in row["labels"].split("|") if v.strip())
            box = _box(row, labels, line)
            split = Split(row["split"]) if row.get("split") else None
            previous = merged.get(path)
            annotations = (previous.annotations if previous else ()) + ((box,) if box else ())
            merged[path] = Sample(
                path,
                labels | (previous.labels if previous else frozenset()),
                annotations,
                row.get("patient") or row["path"],
                split,
            )
    if not merged:
        raise DatasetLayoutError(f"{csv_path.name} lists no images")
    names = {label for sample in merged.values() for label in sample.labels}
    return LabelledSet(
        "csv", csv_path.parent, sorted_labels(names, GENERIC_LABELS), tuple(merged.values()), GENERIC_LABELS
    )
