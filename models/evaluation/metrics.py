"""Every number ``cxr evaluate`` reports, computed by scikit-learn and torchmetrics (none hand-written).

Classification, per label and macro/micro averaged: accuracy, precision, recall, F1 (at the detector's operating
thresholds), AUROC and AUPRC (over its scores); a confusion matrix per label and for "any finding". Detection:
COCO-style mAP@0.5:0.95 and mAP@0.5, and mAP@0.4 (the VinBigData competition's metric), overall and per label.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    confusion_matrix,
    f1_score,
    precision_score,
    recall_score,
    roc_auc_score,
)
from torchmetrics.detection import MeanAveragePrecision

from models.evaluation.agreement import CONFUSION_LAYOUT

Scores = npt.NDArray[np.float64]
Truth = npt.NDArray[np.int64]


def _defined(truth: Truth) -> bool:
    """AUROC and AUPRC need both classes present."""
    return 0 < int(truth.sum()) < len(truth)


def per_label(truth: Truth, predicted: Truth, scores: Scores) -> dict[str, float | None]:
    return {
        "support": float(truth.sum()),
        "accuracy": float(accuracy_score(truth, predicted)),
        "precision": float(precision_score(truth, predicted, zero_division=0)),
        "recall": float(recall_score(truth, predicted, zero_division=0)),
        "f1": float(f1_score(truth, predicted, zero_division=0)),
        "auroc": float(roc_auc_score(truth, scores)) if _defined(truth) else None,
        "auprc": float(average_precision_score(truth, scores)) if _defined(truth) else None,
    }


def averages(truth: Truth, predicted: Truth, scores: Scores) -> dict[str, dict[str, float | None]]:
    """Macro (labels weighted equally) and micro (every decision pooled) averages over the label columns."""
    result: dict[str, dict[str, float | None]] = {}
    if truth.shape[1] == 1:
        # scikit-learn reads a one-column indicator as a binary target and would average over absent/present.
        single = per_label(truth[:, 0], predicted[:, 0], scores[:, 0])
        single.pop("support")
        return {"macro": dict(single), "micro": dict(single), "subset": {"accuracy": single["accuracy"]}}
    defined = [i for i in range(truth.shape[1]) if _defined(truth[:, i])]
    for average in ("macro", "micro"):
        result[average] = {
            "precision": float(precision_score(truth, predicted, average=average, zero_division=0)),
            "recall": float(recall_score(truth, predicted, average=average, zero_division=0)),
            "f1": float(f1_score(truth, predicted, average=average, zero_division=0)),
            "auroc": (
                float(roc_auc_score(truth[:, defined], scores[:, defined], average=average)) if defined else None
            ),
            "auprc": (
                float(average_precision_score(truth[:, defined], scores[:, defined], average=average))
                if defined
                else None
            ),
        }
        result[average]["accuracy"] = (
            float(np.mean([accuracy_score(truth[:, i], predicted[:, i]) for i in range(truth.shape[1])]))
            if average == "macro"
            else float(accuracy_score(truth.ravel(), predicted.ravel()))
        )
    result["subset"] = {"accuracy": float(accuracy_score(truth, predicted))}
    return result


def classification_metrics(labels: Sequence[str], truth: Truth, predicted: Truth, scores: Scores) -> dict[str, Any]:
    """``truth``, ``predicted`` (0/1) and ``scores`` are (images, labels)."""
    any_truth, any_predicted = truth.max(axis=1), predicted.max(axis=1)
    return {
        "labels": {name: per_label(truth[:, i], predicted[:, i], scores[:, i]) for i, name in enumerate(labels)},
        "average": averages(truth, predicted, scores),
        "confusion_matrix": {
            "per_label": {
                name: confusion_matrix(truth[:, i], predicted[:, i], labels=[0, 1]).tolist()
                for i, name in enumerate(labels)
            },
            "any_finding": confusion_matrix(any_truth, any_predicted, labels=[0, 1]).tolist(),
            "layout": CONFUSION_LAYOUT,
        },
    }


BoxSet = dict[str, torch.Tensor]
"""torchmetrics' form: boxes (N, 4) xyxy, labels (N,), and scores (N,) for predictions."""


def mean_average_precision(predictions: list[BoxSet], targets: list[BoxSet], labels: Sequence[str]) -> dict[str, Any]:
    """mAP@0.5:0.95, mAP@0.5 and mAP@0.4, overall and per label (label i is class index i)."""
    coco = MeanAveragePrecision(box_format="xyxy", iou_type="bbox", class_metrics=True)
    at_04 = MeanAveragePrecision(box_format="xyxy", iou_type="bbox", iou_thresholds=[0.4], class_metrics=True)
    for metric in (coco, at_04):
        metric.update(predictions, targets)
    main, vinbig = coco.compute(), at_04.compute()

    def by_class(result: dict[str, torch.Tensor], key: str) -> dict[str, float]:
        classes = result["classes"].reshape(-1).tolist()
        values = result[key].reshape(-1).tolist()
        return {labels[int(c)]: float(v) for c, v in zip(classes, values, strict=True) if 0 <= int(c) < len(labels)}

    return {
        "map_50_95": float(main["map"]),
        "map_50": float(main["map_50"]),
        "map_40": float(vinbig["map"]),
        "per_label": {"map_50_95": by_class(main, "map_per_class"), "map_40": by_class(vinbig, "map_per_class")},
    }
