"""The classical comparison: logistic regression and a random forest on simple image features (scikit-learn).

Features per image, after the serving preprocessing: a 16×16 thumbnail of the letterboxed image, a 16-bin
histogram, and the mean and spread. Each label is fitted on the training split and scored on the evaluated split, so
the deep model's numbers sit next to what a classical pipeline reaches on the same data.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from models.datasets.base import LabelledSet, decode_sample
from models.evaluation.collect import truth_of
from models.evaluation.metrics import classification_metrics
from models.preprocess import letterbox

THUMBNAIL = 16


def image_features(dataset: LabelledSet) -> npt.NDArray[np.float64]:
    rows = []
    for sample in dataset.samples:
        square, _ = letterbox(decode_sample(sample).pixels, 128)
        thumbnail = cv2.resize(square, (THUMBNAIL, THUMBNAIL), interpolation=cv2.INTER_AREA).ravel()
        histogram, _ = np.histogram(square, bins=16, range=(0.0, 1.0), density=True)
        rows.append(np.concatenate([thumbnail, histogram, [square.mean(), square.std()]]))
    return np.array(rows, dtype=np.float64)


def _models(seed: int) -> dict[str, Any]:
    return {
        "logistic_regression": make_pipeline(
            StandardScaler(), LogisticRegression(max_iter=2000, class_weight="balanced")
        ),
        "random_forest": RandomForestClassifier(n_estimators=200, class_weight="balanced", random_state=seed),
    }


def classical_baselines(
    train: LabelledSet, evaluated: LabelledSet, labels: Sequence[str], seed: int = 0
) -> dict[str, Any]:
    """Per model: the same metrics as the detector's, or a note where a label has one class in training."""
    x_train, x_test = image_features(train), image_features(evaluated)
    y_train, y_test = truth_of(train, labels), truth_of(evaluated, labels)
    report: dict[str, Any] = {}
    for name in _models(seed):
        scores = np.zeros(y_test.shape, dtype=np.float64)
        for k in range(len(labels)):
            if len(set(y_train[:, k].tolist())) < 2:
                continue  # nothing to learn: the score stays 0
            model = _models(seed)[name].fit(x_train, y_train[:, k])
            scores[:, k] = model.predict_proba(x_test)[:, 1]
        predicted = (scores >= 0.5).astype(np.int64)
        report[name] = classification_metrics(labels, y_test, predicted, scores)
    return report
