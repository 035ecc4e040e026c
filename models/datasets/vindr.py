"""VinDr-CXR (PhysioNet) and VinBigData (Kaggle): one CSV row per radiologist's box, DICOM images.

Kaggle: ``train.csv`` and ``train/<image_id>.dicom``. PhysioNet: ``annotations/annotations_train.csv`` and
``annotations_test.csv``, with ``train/`` and ``test/`` (the test labels are the radiologists' consensus, so the
official split is kept). Columns: image_id, rad_id, class_name, x_min, y_min, x_max, y_max.

Three radiologists read each training image, so one lesion often has three boxes. ``boxes`` chooses:

- ``fuse`` (default): boxes of one class that overlap (IoU ≥ 0.4) are averaged into one, as in weighted box fusion
  with equal weights; a box only one radiologist drew is kept;
- ``all``: every radiologist's box, as drawn;
- ``R<n>`` (e.g. ``R9``): only that radiologist's boxes, and only the images they read.

An image is positive for a class when any radiologist marked it (after the choice above); "No finding" rows make
negative images.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from pathlib import Path

from models.codes import VINDR_LABELS
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

NO_FINDING = "No finding"
FUSION_IOU = 0.4


def fuse_boxes(annotations: list[Annotation]) -> list[Annotation]:
    """Greedy clustering by class at IoU ≥ 0.4, each cluster averaged; deterministic for a given input order."""
    fused: list[Annotation] = []
    by_label: dict[str, list[Annotation]] = defaultdict(list)
    for annotation in annotations:
        by_label[annotation.label].append(annotation)
    for label, members in by_label.items():
        clusters: list[list[Box]] = []
        for annotation in sorted(members, key=lambda a: -a.box.area()):
            home = next((c for c in clusters if max(annotation.box.iou(b) for b in c) >= FUSION_IOU), None)
            if home is None:
                clusters.append([annotation.box])
            else:
                home.append(annotation.box)
        for cluster in clusters:
            n = len(cluster)
            fused.append(
                Annotation(
                    label,
                    Box(
                        sum(b.x_min for b in cluster) / n,
                        sum(b.y_min for b in cluster) / n,
                        sum(b.x_max for b in cluster) / n,
                        sum(b.y_max for b in cluster) / n,
                    ),
                    reader=f"fused from {n}",
                )
            )
    return fused


def _rows(path: Path) -> dict[str, list[dict[str, str]]]:
    rows: dict[str, list[dict[str, str]]] = defaultdict(list)
    with path.open(newline="") as handle:
        for row in csv.DictReader(handle):
            rows[row["image_id"]].append(row)
    return rows


def _annotations(rows: list[dict[str, str]], boxes: str) -> tuple[list[Annotation], frozenset[str], bool]:
    """The image's boxes, its positive classes, and whether the chosen radiologist read it."""
    chosen = [r for r in rows if boxes in ("fuse", "all") or r.get("rad_id") == boxes]
    drawn = [
        Annotation(
            r["class_name"], Box(*(float(r[k]) for k in ("x_min", "y_min", "x_max", "y_max"))), r.get("rad_id", "")
        )
        for r in chosen
        if r["class_name"] != NO_FINDING and r.get("x_min")
    ]
    labels = frozenset(r["class_name"] for r in chosen if r["class_name"] != NO_FINDING)
    return (fuse_boxes(drawn) if boxes == "fuse" else drawn), labels, bool(chosen)


def _sources(root: Path) -> list[tuple[Path, Path, Split | None]]:
    if (root / "train.csv").is_file():
        return [(root / "train.csv", root / "train", None)]
    annotations = require(root / "annotations", "VinDr-CXR annotations folder (or VinBigData train.csv)")
    return [
        (annotations / f"annotations_{name}.csv", root / name, split)
        for name, split in (("train", None), ("test", Split.TEST))
        if (annotations / f"annotations_{name}.csv").is_file()
    ]


def read_vindr(root: Path, boxes: str = "fuse", seed: int = 0) -> LabelledSet:
    if boxes not in ("fuse", "all") and not (boxes.startswith("R") and boxes[1:].isdigit()):
        raise ValueError(f"VinDr boxes {boxes!r}: use fuse, all, or a radiologist id such as R9")
    samples: list[Sample] = []
    names: set[str] = set()
    sources = _sources(root)
    has_test = any(split is Split.TEST for _, _, split in sources)
    for csv_path, folder, split in sources:
        for image_id, rows in sorted(_rows(csv_path).items()):
            path = next(
                (
                    folder / f"{image_id}{suffix}"
                    for suffix in (".dicom", ".dcm", ".png")
                    if (folder / f"{image_id}{suffix}").is_file()
                ),
                None,
            )
            annotations, labels, read = _annotations(rows, boxes)
            if path is None or not read:
                continue
            names |= labels
            # The consensus test set is the test split; the training images are divided by patient.
            fixed = train_or_validation(image_id, seed) if split is None and has_test else split
            samples.append(Sample(path, labels, tuple(annotations), image_id, fixed))
    if not samples:
        raise DatasetLayoutError(f"no VinDr-CXR image found under {root} (expected train/<image_id>.dicom)")
    return LabelledSet(
        "vindr", root, sorted_labels(names, VINDR_LABELS), tuple(samples), VINDR_LABELS, {"boxes": boxes}
    )
