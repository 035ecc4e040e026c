"""models.evaluation.agreement: the agreement figures against counts made here, intervals around their estimates,
and thresholds that reach the sensitivity asked for."""

from __future__ import annotations

import numpy as np
import pytest

from models.evaluation.agreement import METRICS, agreement, threshold_for_sensitivity


def cohort(seed: int, n: int = 120) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 2, n).astype(np.int64)
    scores = np.clip(0.35 * truth + 0.65 * rng.random(n), 0.0, 1.0)
    return truth, (scores >= 0.5).astype(np.int64), scores


@pytest.mark.parametrize("seed", range(5))
def test_figures_equal_counts_made_independently(seed: int) -> None:
    truth, predicted, scores = cohort(seed)
    tp = int(((truth == 1) & (predicted == 1)).sum())
    tn = int(((truth == 0) & (predicted == 0)).sum())
    fp = int(((truth == 0) & (predicted == 1)).sum())
    fn = int(((truth == 1) & (predicted == 0)).sum())
    measured = agreement(truth, predicted, scores, resamples=400, seed=seed)
    assert measured["confusion_matrix"] == [[tn, fp], [fn, tp]]
    assert measured["sensitivity"]["estimate"] == pytest.approx(tp / (tp + fn))
    assert measured["specificity"]["estimate"] == pytest.approx(tn / (tn + fp))
    assert measured["ppv"]["estimate"] == pytest.approx(tp / (tp + fp))
    assert measured["npv"]["estimate"] == pytest.approx(tn / (tn + fn))
    pairs = [(p, q) for p in scores[truth == 1] for q in scores[truth == 0]]
    auc = sum(1.0 if p > q else 0.5 if p == q else 0.0 for p, q in pairs) / len(pairs)
    assert measured["auroc"]["estimate"] == pytest.approx(auc)
    for name in METRICS:
        value = measured[name]
        assert value["ci_low"] <= value["estimate"] <= value["ci_high"], name
        assert value["ci_high"] - value["ci_low"] > 0, f"{name}: an interval, not a point"


def test_undefined_figures_are_none_not_zero() -> None:
    truth = np.zeros(6, dtype=np.int64)
    predicted = np.array([0, 0, 1, 0, 0, 0], dtype=np.int64)
    measured = agreement(truth, predicted, np.linspace(0, 1, 6))
    assert measured["sensitivity"] == {"estimate": None, "ci_low": None, "ci_high": None, "n": 0}
    assert measured["auroc"]["estimate"] is None
    assert measured["specificity"]["estimate"] == pytest.approx(5 / 6)


@pytest.mark.parametrize("target", [0.5, 0.8, 0.9, 0.95, 1.0])
def test_the_chosen_threshold_reaches_the_target_with_the_best_specificity(target: float) -> None:
    truth, _, scores = cohort(7, 300)
    threshold = threshold_for_sensitivity(truth, scores, target)
    assert threshold is not None
    reported = scores >= threshold
    assert reported[truth == 1].mean() >= target
    higher = scores[scores > threshold]
    if len(higher):
        assert (scores >= higher.min())[truth == 1].mean() < target, "the next higher threshold misses the target"
    assert threshold_for_sensitivity(np.zeros(4, dtype=np.int64), np.ones(4), 0.9) is None
