"""Agreement between the detector and a site's radiologists: sensitivity, specificity, PPV, NPV and AUROC, each with
a bootstrap 95% confidence interval, and the confusion matrix; and the threshold that reaches a target sensitivity.

The point estimates come from scikit-learn (``confusion_matrix``, ``roc_auc_score``, ``roc_curve``), the intervals
from SciPy's percentile bootstrap. The rates are bootstrapped within their denominator (sensitivity over the truly
positive studies, PPV over the reported ones, and so on); AUROC resamples the positive and the negative studies
separately, so that every resample has both and the statistic (Mann-Whitney U over the pairs) is always defined.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.stats import bootstrap, mannwhitneyu
from sklearn.metrics import confusion_matrix, roc_auc_score, roc_curve

Binary = npt.NDArray[np.int64]
Scores = npt.NDArray[np.float64]

CONFIDENCE = 0.95
CONFUSION_LAYOUT = "[[true negative, false positive], [false negative, true positive]]"
"""How every confusion matrix we write is laid out (scikit-learn's, with labels [0, 1])."""


def _interval(estimate: float | None, low: float | None, high: float | None, n: int) -> dict[str, Any]:
    return {"estimate": estimate, "ci_low": low, "ci_high": high, "n": n}


def _proportion(values: Binary, resamples: int, rng: np.random.Generator) -> dict[str, Any]:
    """The share of ones in ``values`` (a rate over its denominator), with its interval."""
    n = len(values)
    if n == 0:
        return _interval(None, None, None, 0)
    estimate = float(values.mean())
    if n < 2 or values.min() == values.max():
        return _interval(estimate, estimate, estimate, n)  # every resample is the same
    low, high = _percentile_interval((values.astype(np.float64),), np.mean, resamples, rng)
    return _interval(estimate, low, high, n)


def _percentile_interval(
    samples: tuple[Scores, ...], statistic: Any, resamples: int, rng: np.random.Generator
) -> tuple[float, float]:
    """SciPy's percentile bootstrap, each sample resampled on its own (vectorised along the last axis)."""
    result = bootstrap(
        samples,
        statistic,
        vectorized=True,
        axis=-1,
        n_resamples=resamples,
        confidence_level=CONFIDENCE,
        method="percentile",
        random_state=rng,
    )
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def _auc_statistic(positive: Scores, negative: Scores, axis: int = -1) -> Scores:
    u = mannwhitneyu(positive, negative, axis=axis, alternative="two-sided").statistic
    return np.asarray(u / (positive.shape[axis] * negative.shape[axis]), dtype=np.float64)


def _auroc(truth: Binary, scores: Scores, resamples: int, rng: np.random.Generator) -> dict[str, Any]:
    positive, negative = scores[truth == 1], scores[truth == 0]
    if not len(positive) or not len(negative):
        return _interval(None, None, None, len(truth))  # AUROC needs both classes
    estimate = float(roc_auc_score(truth, scores))
    if len(positive) < 2 or len(negative) < 2 or scores.min() == scores.max():
        return _interval(estimate, estimate, estimate, len(truth))
    low, high = _percentile_interval((positive, negative), _auc_statistic, resamples, rng)
    return _interval(estimate, min(low, estimate), max(high, estimate), len(truth))


def agreement(truth: Binary, predicted: Binary, scores: Scores, resamples: int = 1000, seed: int = 0) -> dict[str, Any]:
    """``truth`` and ``predicted`` are 0/1 per study, ``scores`` the detector's score per study."""
    rng = np.random.default_rng(seed)
    matrix = confusion_matrix(truth, predicted, labels=[0, 1])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a resample with tied scores everywhere
        return {
            "studies": len(truth),
            "positives": int(truth.sum()),
            "negatives": int(len(truth) - truth.sum()),
            "confusion_matrix": matrix.tolist(),
            "sensitivity": _proportion(predicted[truth == 1], resamples, rng),
            "specificity": _proportion(1 - predicted[truth == 0], resamples, rng),
            "ppv": _proportion(truth[predicted == 1], resamples, rng),
            "npv": _proportion(1 - truth[predicted == 0], resamples, rng),
            "auroc": _auroc(truth, scores, resamples, rng),
        }


def threshold_for_sensitivity(truth: Binary, scores: Scores, target: float) -> float | None:
    """The highest score threshold (a study is positive at or above it) whose sensitivity on these studies reaches
    ``target``: the best specificity that keeps the sensitivity. None without a truly positive study."""
    if not truth.sum():
        return None
    _, tpr, thresholds = roc_curve(truth, scores, drop_intermediate=False)
    reaching = np.flatnonzero((tpr >= target) & np.isfinite(thresholds))
    return float(thresholds[reaching[0]]) if len(reaching) else float(scores[truth == 1].min())


METRICS = ("sensitivity", "specificity", "ppv", "npv", "auroc")
