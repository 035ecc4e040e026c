"""The evaluation's pictures (matplotlib, off-screen; curves by scikit-learn's displays): ROC and PR curves per
label, the confusion matrices, and example overlays of true and false positives."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import cv2
import matplotlib

matplotlib.use("Agg")  # no display on a server; must precede pyplot

import matplotlib.pyplot as plt
import numpy as np
import numpy.typing as npt
from sklearn.metrics import (
    ConfusionMatrixDisplay,
    PrecisionRecallDisplay,
    RocCurveDisplay,
    confusion_matrix,
)

from models.datasets.base import decode_sample
from models.evaluation.collect import Evaluated
from models.preprocess import to_uint8
from models.protocol import Box

IOU_MATCH = 0.4
EXAMPLES = 4


def slug(label: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-")


def curves(evaluated: Evaluated, out: Path) -> list[Path]:
    columns = [(label, evaluated.truth[:, k], evaluated.scores[:, k]) for k, label in enumerate(evaluated.labels)]
    return label_curves(columns, out)


def label_curves(
    columns: Sequence[tuple[str, npt.NDArray[np.int64], npt.NDArray[np.float64]]], out: Path
) -> list[Path]:
    """ROC and PR curves, one pair per (label, truth, scores); a label without both classes gets none."""
    written = []
    for label, truth, scores in columns:
        if not 0 < truth.sum() < len(truth):
            continue  # a curve needs both classes
        for kind, display in (("roc", RocCurveDisplay), ("pr", PrecisionRecallDisplay)):
            figure, axes = plt.subplots(figsize=(4.5, 4.5))
            display.from_predictions(truth, scores, name=label, ax=axes)
            axes.set_title(f"{kind.upper()}: {label}")
            path = out / f"{kind}_{slug(label)}.png"
            figure.savefig(path, dpi=100, bbox_inches="tight")
            plt.close(figure)
            written.append(path)
    return written


def confusion(evaluated: Evaluated, out: Path) -> Path:
    names = ["any finding", *evaluated.labels]
    truths = [evaluated.truth.max(axis=1), *evaluated.truth.T]
    predictions = [evaluated.predicted.max(axis=1), *evaluated.predicted.T]
    figure, axes = plt.subplots(1, len(names), figsize=(3.6 * len(names), 3.6), squeeze=False)
    for axis, name, truth, predicted in zip(axes[0], names, truths, predictions, strict=True):
        matrix = confusion_matrix(truth, predicted, labels=[0, 1])
        ConfusionMatrixDisplay(matrix, display_labels=["absent", "present"]).plot(ax=axis, colorbar=False)
        axis.set_title(name)
    path = out / "confusion_matrix.png"
    figure.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(figure)
    return path


def _ranked(evaluated: Evaluated) -> dict[str, list[tuple[float, int]]]:
    """Images ranked by the detector's most confident hit (tp) and most confident miss (fp).

    With boxes, a hit is a predicted box at IoU ≥ 0.4 with a true box of its label; without, a truly positive
    image's best score is a hit and a truly negative image's best score a miss.
    """
    ranked: dict[str, list[tuple[float, int]]] = {"tp": [], "fp": []}
    for i in range(len(evaluated.samples)):
        predicted, truth = evaluated.predicted_boxes[i], evaluated.true_boxes[i]
        if len(predicted["boxes"]):
            true_boxes = [
                (int(k), Box(*b)) for b, k in zip(truth["boxes"].tolist(), truth["labels"].tolist(), strict=True)
            ]
            for box, score, label in zip(
                predicted["boxes"].tolist(), predicted["scores"].tolist(), predicted["labels"].tolist(), strict=True
            ):
                hit = any(k == label and Box(*box).iou(t) >= IOU_MATCH for k, t in true_boxes)
                ranked["tp" if hit else "fp"].append((float(score), i))
        elif evaluated.scores.shape[1]:
            ranked["tp" if evaluated.truth[i].any() else "fp"].append((float(evaluated.scores[i].max()), i))
    for key, entries in ranked.items():
        best: dict[int, float] = {}
        for score, i in entries:
            best[i] = max(score, best.get(i, 0.0))
        ranked[key] = sorted(((score, i) for i, score in best.items()), reverse=True)[:EXAMPLES]
    return ranked


def _draw(evaluated: Evaluated, i: int) -> np.ndarray:
    canvas = cv2.cvtColor(to_uint8(decode_sample(evaluated.samples[i]).pixels), cv2.COLOR_GRAY2BGR)
    for x0, y0, x1, y1 in evaluated.true_boxes[i]["boxes"].tolist():
        cv2.rectangle(canvas, (int(x0), int(y0)), (int(x1), int(y1)), (0, 200, 0), 2)
    predicted = evaluated.predicted_boxes[i]
    order = np.argsort(-predicted["scores"].numpy())[:3]
    for k in order.tolist():
        x0, y0, x1, y1 = predicted["boxes"][k].tolist()
        cv2.rectangle(canvas, (int(x0), int(y0)), (int(x1), int(y1)), (0, 0, 230), 2)
        cv2.putText(
            canvas,
            f"{float(predicted['scores'][k]):.2f}",
            (int(x0), max(12, int(y0) - 4)),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.45,
            (0, 0, 230),
            1,
            cv2.LINE_AA,
        )
    return canvas


def overlays(evaluated: Evaluated, out: Path) -> list[Path]:
    """The four most confident true and false positives: the truth in green, the top three boxes in red."""
    folder = out / "examples"
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for outcome, entries in _ranked(evaluated).items():
        for rank, (_, i) in enumerate(entries, start=1):
            path = folder / f"{outcome}_{rank}.png"
            cv2.imwrite(str(path), _draw(evaluated, i))
            written.append(path)
    return written


def plot_all(evaluated: Evaluated, out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    return [*curves(evaluated, out), confusion(evaluated, out), *overlays(evaluated, out)]
