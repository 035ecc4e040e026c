"""``cxr train detector``: a torchvision Faster R-CNN or RetinaNet on box annotations.

Images without boxes ("No finding") are negative examples. Each label's score threshold is the one with the best
image-level F1 on the validation split (an image is positive for a label when its best box of that label is above).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from torch import nn
from torch.utils.data import DataLoader

from models.architectures import IMAGENET_BACKBONES, build_detector
from models.checkpoint import CheckpointMetadata, ModelKind
from models.datasets.base import LabelledSet, train_and_validation
from models.evaluation.metrics import BoxSet, mean_average_precision
from models.training.augment import Augmentation, detection_transform
from models.training.data import DetectionData, PreparedImages, collate_detection
from models.training.export import export, training_record
from models.training.loop import Trainer, TrainOptions, seed_everything
from models.training.pretrained import initialise_detector_backbone
from models.training.thresholds import f1_threshold

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DetectorRecipe:
    architecture: str = "fasterrcnn_resnet50_fpn_v2"
    init: str = "imagenet"
    input_size: int = 1024
    augmentation: Augmentation = field(default_factory=Augmentation)
    version: str = "1"


def boxed_labels(dataset: LabelledSet) -> tuple[str, ...]:
    """The labels that have boxes, in the dataset's order: the detector's classes."""
    drawn = {a.label for sample in dataset.samples for a in sample.annotations}
    return tuple(name for name in dataset.labels if name in drawn)


def predict_boxes(
    model: nn.Module, data: DetectionData, device: torch.device, batch_size: int
) -> tuple[list[BoxSet], list[BoxSet]]:
    """Predictions and targets over ``data`` (model-input pixels), in torchmetrics' form with 0-based classes."""
    model.eval()
    predictions, targets = [], []
    loader = DataLoader(data, batch_size=batch_size, collate_fn=collate_detection)
    with torch.no_grad():
        for images, truths in loader:
            for output, truth in zip(model([image.to(device) for image in images]), truths, strict=True):
                predictions.append(
                    {
                        "boxes": output["boxes"].float().cpu(),
                        "scores": output["scores"].float().cpu(),
                        "labels": output["labels"].cpu() - 1,
                    }
                )
                targets.append({"boxes": truth["boxes"], "labels": truth["labels"] - 1})
    model.train()
    return predictions, targets


def image_scores(boxes: list[BoxSet], classes: int) -> npt.NDArray[np.float64]:
    """Each image's best box score per class (0 where none)."""
    scores = np.zeros((len(boxes), classes))
    for i, found in enumerate(boxes):
        for label, score in zip(found["labels"].tolist(), found["scores"].tolist(), strict=True):
            scores[i, label] = max(scores[i, label], score)
    return scores


def _thresholds(predictions: list[BoxSet], targets: list[BoxSet], labels: tuple[str, ...]) -> dict[str, float]:
    scores = image_scores(predictions, len(labels))
    truth = np.zeros_like(scores, dtype=np.int64)
    for i, target in enumerate(targets):
        truth[i, target["labels"].tolist()] = 1
    return {name: f1_threshold(truth[:, k], scores[:, k]) for k, name in enumerate(labels)}


def train_detector(
    dataset: LabelledSet, recipe: DetectorRecipe, options: TrainOptions, run_dir: Path, weights_dir: Path
) -> Path:
    """Train, choose thresholds on validation, and export ``run_dir/model.pt``; returns its path."""
    seed_everything(options.seed)
    labels = boxed_labels(dataset)
    if not labels:
        raise ValueError(f"the {dataset.layout} set has no boxes to train a detector on")
    train, validation = train_and_validation(dataset, options.seed)
    model = build_detector(recipe.architecture, len(labels), recipe.input_size)
    initialise_detector_backbone(model, recipe.architecture, recipe.init, weights_dir, IMAGENET_BACKBONES)
    images = PreparedImages(recipe.input_size)
    train_data = DetectionData(
        train.samples, labels, images, detection_transform(recipe.augmentation, recipe.input_size)
    )
    validation_data = DetectionData(validation.samples, labels, images, None)
    trainer = Trainer(model, options, run_dir)
    loader = DataLoader(
        train_data,
        batch_size=options.batch_size,
        shuffle=True,
        collate_fn=collate_detection,
        num_workers=options.workers,
        persistent_workers=options.workers > 0,
    )

    def step(network: nn.Module, batch: Any, device: torch.device) -> tuple[torch.Tensor, int]:
        inputs, targets = batch
        losses = network([i.to(device) for i in inputs], [{k: v.to(device) for k, v in t.items()} for t in targets])
        return sum(losses.values(), torch.zeros((), device=device)), len(inputs)

    def validate() -> dict[str, float]:
        found = mean_average_precision(
            *predict_boxes(trainer.model, validation_data, trainer.device, options.batch_size), labels
        )
        return {"map_50": found["map_50"], "map_40": found["map_40"]}

    history = trainer.fit(lambda: loader, len(loader), step, validate)
    predictions, targets = predict_boxes(trainer.model, validation_data, trainer.device, options.batch_size)
    found = mean_average_precision(predictions, targets, labels)
    metadata = CheckpointMetadata(
        architecture=recipe.architecture,
        labels=list(labels),
        input_size=recipe.input_size,
        thresholds=_thresholds(predictions, targets, labels),
        default_threshold=0.5,
        version=recipe.version,
        kind=ModelKind.DETECTOR.value,
        codes={k: v for k, v in dataset.code_values().items() if k in labels},
        training=training_record(
            dataset, train, validation, options, recipe.augmentation, {"init": recipe.init, **dataset.options}, history
        ),
        metrics={"map_50": found["map_50"], "map_50_95": found["map_50_95"], "map_40": found["map_40"]},
    )
    return export(trainer.model, metadata, run_dir)
