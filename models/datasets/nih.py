"""NIH ChestX-ray14: ``Data_Entry_2017.csv``, ``BBox_List_2017.csv`` and the ``images*/`` folders as downloaded.

Labels come from ``Finding Labels`` (``|``-separated, ``No Finding``); boxes, for the 880 images that have them, from
the box file (x, y, w, h in pixels). ``train_val_list.txt`` and ``test_list.txt``, when present, give the official
patient-wise split; the validation split is then drawn from train_val by patient.
"""

from __future__ import annotations

import csv
from pathlib import Path

from models.codes import NIH_LABELS
from models.datasets.base import (
    Annotation,
    DatasetLayoutError,
    LabelledSet,
    Sample,
    Split,
    require,
    sorted_labels,
    train_or_validation,
)
from models.protocol import Box

NO_FINDING = "No Finding"


def _image_index(root: Path) -> dict[str, Path]:
    return {path.name: path for path in root.rglob("*.png")}


def _boxes(root: Path) -> dict[str, list[Annotation]]:
    path = root / "BBox_List_2017.csv"
    boxes: dict[str, list[Annotation]] = {}
    if not path.is_file():
        return boxes
    with path.open(newline="") as handle:
        rows = csv.reader(handle)
        next(rows, None)  # the header's "Bbox [x,y,w,h]" spans four columns
        for row in rows:
            if len(row) < 6:
                continue
            x, y, w, h = (float(v) for v in row[2:6])
            label = "Infiltration" if row[1] == "Infiltrate" else row[1]
            boxes.setdefault(row[0], []).append(Annotation(label, Box(x, y, x + w, y + h)))
    return boxes


def _official_split(root: Path) -> dict[str, Split]:
    split: dict[str, Split] = {}
    for name, value in (("train_val_list.txt", Split.TRAIN), ("test_list.txt", Split.TEST)):
        if (root / name).is_file():
            split.update({line.strip(): value for line in (root / name).read_text().splitlines() if line.strip()})
    return split


def read_nih(root: Path, seed: int = 0) -> LabelledSet:
    entries = require(root / "Data_Entry_2017.csv", "ChestX-ray14 label file")
    images, boxes, official = _image_index(root), _boxes(root), _official_split(root)
    samples: list[Sample] = []
    names: set[str] = set()
    with entries.open(newline="") as handle:
        for row in csv.DictReader(handle):
            path = images.get(row["Image Index"])
            if path is None:
                continue
            labels = frozenset(v for v in row["Finding Labels"].split("|") if v and v != NO_FINDING)
            names |= labels
            split = official.get(row["Image Index"])
            if split is Split.TRAIN:
                split = train_or_validation(row["Patient ID"], seed)
            samples.append(Sample(path, labels, tuple(boxes.get(row["Image Index"], ())), row["Patient ID"], split))
    if not samples:
        raise DatasetLayoutError(f"no image listed in {entries.name} was found under {root}")
    return LabelledSet("nih", root, sorted_labels(names, NIH_LABELS), tuple(samples), NIH_LABELS)
