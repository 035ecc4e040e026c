"""Operating points chosen on the validation split (scikit-learn curves).

A chosen threshold lies halfway between the deciding validation score and the next lower one, not on the score
itself, so that the last bits of difference between training-time and serving-time arithmetic (batch size, device)
cannot flip that image's decision.
"""

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
    return _below(float(thresholds[int(np.argmax(f1))]), s)


def sensitivity_threshold(truth: npt.ArrayLike, scores: npt.ArrayLike, target: float, default: float = 0.5) -> float:
    """The highest threshold whose sensitivity on validation reaches ``target`` (the two-stage gate)."""
    y, s = np.asarray(truth, dtype=int), np.asarray(scores, dtype=float)
    if y.sum() == 0 or y.sum() == len(y):
        return default
    _, tpr, thresholds = roc_curve(y, s, drop_intermediate=False)
    reaching = np.flatnonzero(tpr >= target)
    return _below(float(min(thresholds[reaching[0]], 1.0)), s)


def _below(threshold: float, scores: Array) -> float:
    """Halfway from ``threshold`` (a validation score) to the next lower score, or a hair under it if none."""
    lower = scores[scores < threshold]
    return (threshold + float(lower.max())) / 2 if lower.size else float(np.nextafter(threshold, -np.inf))
