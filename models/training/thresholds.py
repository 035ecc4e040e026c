"""Operating points chosen on the validation split (scikit-learn curves)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from sklearn.metrics import precision_recall_curve, roc_curve

Array = npt.NDArray[np.float64]


def f1_threshold(truth: npt.ArrayLike, scores: npt.ArrayLike, default: float = 0.5) -> float:
    """The score threshold with the best F1 on validation; ``default`` when the split has no positive."""
    y, s = np.asarray(truth, dtype=int), np.asarray(scores, dtype=float)
    if y.sum() == 0 or y.sum() == len(y):
        return default
    precision, recall, thresholds = precision_recall_curve(y, s)
    f1 = 2 * precision[:-1] * recall[:-1] / np.maximum(precision[:-1] + recall[:-1], 1e-12)
    return float(thresholds[int(np.argmax(f1))])


def sensitivity_threshold(truth: npt.ArrayLike, scores: npt.ArrayLike, target: float, default: float = 0.5) -> float:
    """The highest threshold whose sensitivity on validation reaches ``target`` (the two-stage gate)."""
    y, s = np.asarray(truth, dtype=int), np.asarray(scores, dtype=float)
    if y.sum() == 0 or y.sum() == len(y):
        return default
    _, tpr, thresholds = roc_curve(y, s, drop_intermediate=False)
    reaching = np.flatnonzero(tpr >= target)
    return float(min(thresholds[reaching[0]], 1.0))
