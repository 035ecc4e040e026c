"""models.evaluation.metrics: our metric outputs on fixed predictions, checked against values computed independently:
torchmetrics' classification metrics (a different library from the scikit-learn we use), and detection cases whose
average precision can be worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torchmetrics.classification import (
    BinaryAUROC,
    BinaryAveragePrecision,
    MultilabelAUROC,
    MultilabelF1Score,
    MultilabelPrecision,
    MultilabelRecall,
)

from models.evaluation.metrics import classification_metrics, mean_average_precision

LABELS = ["Nodule", "Effusion", "Cardiomegaly"]
TRUTH = np.array([[1, 0, 0], [0, 1, 0], [1, 1, 0], [0, 0, 1], [0, 0, 0], [1, 0, 1], [0, 1, 1], [0, 0, 0]])
SCORES = np.array(
    [
        [0.9, 0.2, 0.1],
        [0.3, 0.8, 0.4],
        [0.6, 0.4, 0.2],
        [0.2, 0.1, 0.7],
        [0.1, 0.3, 0.6],
        [0.7, 0.2, 0.9],
        [0.4, 0.9, 0.3],
        [0.5, 0.6, 0.2],
    ]
)
PREDICTED = (SCORES >= 0.5).astype(np.int64)


@pytest.fixture(scope="module")
def ours() -> dict[str, object]:
    return classification_metrics(LABELS, TRUTH, PREDICTED, SCORES)


def test_per_label_values_match_torchmetrics(ours: dict[str, object]) -> None:
    rows = ours["labels"]  # type: ignore[index]
    for k, label in enumerate(LABELS):
        truth, scores = torch.tensor(TRUTH[:, k]), torch.tensor(SCORES[:, k])
        assert rows[label]["auroc"] == pytest.approx(float(BinaryAUROC()(scores, truth)))
        assert rows[label]["auprc"] == pytest.approx(float(BinaryAveragePrecision()(scores, truth)))
        predicted = PREDICTED[:, k]
        assert rows[label]["accuracy"] == pytest.approx(float(np.mean(predicted == TRUTH[:, k])))
        assert rows[label]["support"] == TRUTH[:, k].sum()


@pytest.mark.parametrize("average", ["macro", "micro"])
def test_averages_match_torchmetrics(ours: dict[str, object], average: str) -> None:
    row = ours["average"][average]  # type: ignore[index]
    scores, truth = torch.tensor(SCORES, dtype=torch.float32), torch.tensor(TRUTH)
    assert row["auroc"] == pytest.approx(float(MultilabelAUROC(3, average=average)(scores, truth)), abs=1e-6)
    decisions = torch.tensor(PREDICTED)  # the same 0/1 decisions; torchmetrics would binarise scores with ">"
    assert row["f1"] == pytest.approx(float(MultilabelF1Score(3, average=average)(decisions, truth)), abs=1e-6)
    assert row["precision"] == pytest.approx(float(MultilabelPrecision(3, average=average)(decisions, truth)), abs=1e-6)
    assert row["recall"] == pytest.approx(float(MultilabelRecall(3, average=average)(decisions, truth)), abs=1e-6)


def test_confusion_matrices_count_every_decision(ours: dict[str, object]) -> None:
    matrices = ours["confusion_matrix"]  # type: ignore[index]
    (tn, fp), (fn, tp) = matrices["per_label"]["Nodule"]
    assert (tn, fp, fn, tp) == (4, 1, 0, 3)
    assert matrices["any_finding"] == [[0, 2], [0, 6]]


def test_a_single_label_is_averaged_as_itself() -> None:
    metrics = classification_metrics(["Nodule"], TRUTH[:, :1], PREDICTED[:, :1], SCORES[:, :1])
    for average in ("macro", "micro"):
        assert metrics["average"][average]["f1"] == metrics["labels"]["Nodule"]["f1"]
        assert metrics["average"][average]["auroc"] == metrics["labels"]["Nodule"]["auroc"]


def boxes(
    *rows: tuple[float, float, float, float], scores: list[float] | None = None, labels: list[int] | None = None
) -> dict[str, torch.Tensor]:
    found = {
        "boxes": torch.tensor(rows, dtype=torch.float32).reshape(-1, 4),
        "labels": torch.tensor(labels if labels is not None else [0] * len(rows), dtype=torch.int64),
    }
    if scores is not None:
        found["scores"] = torch.tensor(scores, dtype=torch.float32)
    return found


def test_map_of_hand_worked_cases() -> None:
    truth = [boxes((10, 10, 50, 50)), boxes((100, 100, 140, 140))]
    perfect = [boxes((10, 10, 50, 50), scores=[0.9]), boxes((100, 100, 140, 140), scores=[0.8])]
    assert mean_average_precision(perfect, truth, ["Nodule"])["map_50"] == pytest.approx(1.0)
    # The best-scored box is a false positive, then both hits: precision 1/2 at recall 1/2, 2/3 at recall 1; COCO's
    # 101-point interpolation gives (51 × 2/3 + 50 × 2/3) / 101 = 2/3.
    ranked = [
        boxes((10, 10, 50, 50), (200, 200, 240, 240), scores=[0.8, 0.95]),
        boxes((100, 100, 140, 140), scores=[0.7]),
    ]
    assert mean_average_precision(ranked, truth, ["Nodule"])["map_50"] == pytest.approx(2 / 3, abs=1e-6)


def test_map_at_04_counts_looser_overlaps() -> None:
    truth = [boxes((0, 0, 100, 100))]
    # IoU 0.45: a hit at 0.4 (VinBigData's threshold), a miss at 0.5.
    shifted = [boxes((0, 0, 100, 45), scores=[0.9])]
    found = mean_average_precision(shifted, truth, ["Nodule"])
    assert found["map_40"] == pytest.approx(1.0) and found["map_50"] == pytest.approx(0.0)
    assert found["per_label"]["map_40"] == {"Nodule": pytest.approx(1.0)}
