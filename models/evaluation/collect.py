"""Run a detector over a labelled split and line its outputs up with the truth, label by label.

Labels are compared in the project's terms (``models.codes``): the dataset's names are mapped through its code table,
and only labels both the detector reports and the dataset has are evaluated. Scores come from the detector's
candidates (its outputs before thresholds) where it keeps them, so AUROC and mAP see the low scores too; the 0/1
predictions are its findings, at its own operating thresholds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import torch
from rich.progress import Progress

from models.datasets.base import LabelledSet, Sample, decode_sample
from models.evaluation.metrics import BoxSet
from models.protocol import Detector, Finding, ImageResult


@dataclass(frozen=True)
class Evaluated:
    labels: tuple[str, ...]
    samples: tuple[Sample, ...]
    truth: npt.NDArray[np.int64]
    predicted: npt.NDArray[np.int64]
    scores: npt.NDArray[np.float64]
    predicted_boxes: list[BoxSet]
    true_boxes: list[BoxSet]
    """Source pixels; class k is ``labels[k]``."""


def evaluated_labels(detector: Detector, dataset: LabelledSet) -> tuple[str, ...]:
    present = {str(dataset.codes[name]) for name in dataset.labels if dataset.codes.get(name) is not None}
    labels = tuple(label for label in detector.labels if label in present)
    if not labels:
        raise ValueError(
            f"the detector reports {', '.join(detector.labels)}; this {dataset.layout} set has "
            f"{', '.join(sorted(present)) or 'no coded label'}: nothing to compare"
        )
    return labels


def truth_of(dataset: LabelledSet, labels: Sequence[str]) -> npt.NDArray[np.int64]:
    """(images, labels) 0/1 in the project's labels."""
    mapped = [{str(dataset.codes[n]) for n in s.labels if dataset.codes.get(n) is not None} for s in dataset.samples]
    truth = np.array([[int(label in found) for label in labels] for found in mapped], dtype=np.int64)
    return truth.reshape(-1, len(labels))


def _true_boxes(sample: Sample, dataset: LabelledSet, index: dict[str, int]) -> BoxSet:
    kept = [
        (a.box.as_tuple(), index[str(dataset.codes[a.label])])
        for a in sample.annotations
        if dataset.codes.get(a.label) is not None and str(dataset.codes[a.label]) in index
    ]
    return {
        "boxes": torch.tensor([b for b, _ in kept], dtype=torch.float32).reshape(-1, 4),
        "labels": torch.tensor([k for _, k in kept], dtype=torch.int64),
    }


def _predicted_boxes(result: ImageResult, index: dict[str, int]) -> BoxSet:
    located = [c for c in result.candidates if c.box is not None] or [f for f in result.findings if f.box is not None]
    kept: list[Finding] = [f for f in located if f.label in index]
    return {
        "boxes": torch.tensor([f.box.as_tuple() for f in kept if f.box], dtype=torch.float32).reshape(-1, 4),
        "scores": torch.tensor([f.probability for f in kept], dtype=torch.float32),
        "labels": torch.tensor([index[f.label] for f in kept], dtype=torch.int64),
    }


def _label_scores(result: ImageResult, labels: Sequence[str]) -> list[float]:
    outputs = result.candidates or result.findings
    return [max((f.probability for f in outputs if f.label == label), default=0.0) for label in labels]


def collect(detector: Detector, dataset: LabelledSet, batch_size: int = 8) -> Evaluated:
    labels = evaluated_labels(detector, dataset)
    index = {label: k for k, label in enumerate(labels)}
    results: list[ImageResult] = []
    samples = list(dataset.samples)
    with Progress(transient=True) as progress:
        task = progress.add_task("evaluating", total=len(samples))
        for start in range(0, len(samples), batch_size):
            batch = samples[start : start + batch_size]
            results += detector.detect([decode_sample(sample) for sample in batch])
            progress.advance(task, len(batch))
    predicted = np.array(
        [[int(any(f.label == label for f in r.findings)) for label in labels] for r in results], dtype=np.int64
    ).reshape(-1, len(labels))
    scores = np.array([_label_scores(r, labels) for r in results], dtype=np.float64).reshape(-1, len(labels))
    return Evaluated(
        labels,
        tuple(samples),
        truth_of(dataset, labels),
        predicted,
        scores,
        [_predicted_boxes(r, index) for r in results],
        [_true_boxes(s, dataset, index) for s in samples],
    )
