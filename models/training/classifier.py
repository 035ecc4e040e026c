"""``cxr train classifier``: a multi-label (or binary) chest X-ray classifier from a local dataset.

Weighted loss (``pos_weight`` = negatives/positives per label) or weighted sampling handles class imbalance. After
training, each label's threshold is the F1-best on the validation split, and the two-stage gate's threshold on the
highest output is the one that reaches the target sensitivity for "any finding" there.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from sklearn.metrics import roc_auc_score
from torch import nn
from torch.utils.data import DataLoader, WeightedRandomSampler

from models.architectures import build_classifier
from models.checkpoint import CheckpointMetadata, ModelKind
from models.datasets.base import LabelledSet, train_and_validation
from models.training.augment import Augmentation, classification_transform
from models.training.data import ClassificationData, PreparedImages
from models.training.export import export, training_record
from models.training.loop import Trainer, TrainOptions, seed_everything
from models.training.pretrained import initialise_classifier
from models.training.thresholds import f1_threshold, sensitivity_threshold

logger = logging.getLogger(__name__)

XRV_SCALE = (2048.0, -1024.0)
"""torchxrayvision's input range, [-1024, 1024], for a model that starts from its weights."""
STANDARD_SCALE = (4.0, -2.0)
"""(x − 0.5) / 0.25: zero-centred, unit-ish spread, for the other starts."""
BALANCING = ("weighted-loss", "sampler", "none")


@dataclass(frozen=True)
class ClassifierRecipe:
    architecture: str = "densenet121"
    init: str = "imagenet"
    input_size: int = 224
    balance: str = "weighted-loss"
    target_sensitivity: float = 0.95
    augmentation: Augmentation = field(default_factory=Augmentation)
    version: str = "1"


def _positive_rates(data: LabelledSet) -> npt.NDArray[np.float64]:
    counts = np.array([[name in s.labels for name in data.labels] for s in data.samples], dtype=np.float64)
    return np.asarray(counts.mean(axis=0) if len(counts) else np.zeros(len(data.labels)))


def _loader(
    data: ClassificationData, train: LabelledSet, recipe: ClassifierRecipe, options: TrainOptions, shuffle: bool
) -> DataLoader[tuple[torch.Tensor, torch.Tensor]]:
    sampler = None
    if shuffle and recipe.balance == "sampler":
        rates = np.clip(_positive_rates(train), 1e-3, 1.0)
        weights = [
            1.0 / float(min((rates[i] for i, n in enumerate(train.labels) if n in s.labels), default=1.0))
            for s in train.samples
        ]
        sampler = WeightedRandomSampler(weights, num_samples=len(weights), replacement=True)
    return DataLoader(
        data,
        batch_size=options.batch_size,
        shuffle=shuffle and sampler is None,
        sampler=sampler,
        num_workers=options.workers,
        persistent_workers=options.workers > 0,
        drop_last=False,
    )


def predict(
    model: nn.Module, loader: DataLoader[tuple[torch.Tensor, torch.Tensor]], device: torch.device
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
    """Sigmoid outputs and truths over a loader, in order."""
    model.eval()
    scores, truths = [], []
    with torch.no_grad():
        for images, targets in loader:
            scores.append(torch.sigmoid(model(images.to(device)).float()).cpu().numpy())
            truths.append(targets.numpy().astype(np.int64))
    model.train()
    return np.concatenate(scores).astype(np.float32), np.concatenate(truths)


def macro_auroc(scores: npt.NDArray[np.float32], truths: npt.NDArray[np.int64]) -> float | None:
    defined = [i for i in range(truths.shape[1]) if 0 < truths[:, i].sum() < len(truths)]
    if not defined:
        return None
    return float(np.mean([roc_auc_score(truths[:, i], scores[:, i]) for i in defined]))


def _operating_points(
    truths: npt.NDArray[np.int64], scores: npt.NDArray[np.float32], labels: tuple[str, ...], target: float
) -> tuple[dict[str, float], float]:
    thresholds = {name: f1_threshold(truths[:, i], scores[:, i]) for i, name in enumerate(labels)}
    gate = sensitivity_threshold(truths.max(axis=1), scores.max(axis=1), target)
    return thresholds, gate


def train_classifier(
    dataset: LabelledSet, recipe: ClassifierRecipe, options: TrainOptions, run_dir: Path, weights_dir: Path
) -> Path:
    """Train, choose thresholds on validation, and export ``run_dir/model.pt``; returns its path."""
    seed_everything(options.seed)
    train, validation = train_and_validation(dataset, options.seed)
    model = build_classifier(recipe.architecture, len(dataset.labels))
    initialise_classifier(model, recipe.architecture, recipe.init, weights_dir)
    scale, offset = XRV_SCALE if recipe.init == "xrv" else STANDARD_SCALE
    images = PreparedImages(recipe.input_size)
    train_data = ClassificationData(
        train.samples,
        dataset.labels,
        images,
        classification_transform(recipe.augmentation, recipe.input_size),
        scale,
        offset,
    )
    validation_data = ClassificationData(validation.samples, dataset.labels, images, None, scale, offset)
    trainer = Trainer(model, options, run_dir)
    rates = np.clip(_positive_rates(train), 1e-3, 1 - 1e-3)
    pos_weight = torch.tensor(
        (1 - rates) / rates if recipe.balance == "weighted-loss" else np.ones_like(rates),
        dtype=torch.float32,
        device=trainer.device,
    )
    loss_function = nn.BCEWithLogitsLoss(pos_weight=pos_weight)
    train_loader = _loader(train_data, train, recipe, options, shuffle=True)
    validation_loader = _loader(validation_data, validation, recipe, options, shuffle=False)

    def step(network: nn.Module, batch: Any, device: torch.device) -> tuple[torch.Tensor, int]:
        inputs, targets = batch
        return loss_function(network(inputs.to(device)).float(), targets.to(device)), len(inputs)

    def validate() -> dict[str, float]:
        auroc = macro_auroc(*predict(trainer.model, validation_loader, trainer.device))
        return {} if auroc is None else {"auroc_macro": auroc}

    history = trainer.fit(lambda: train_loader, len(train_loader), step, validate)
    scores, truths = predict(trainer.model, validation_loader, trainer.device)
    thresholds, gate = _operating_points(truths, scores, dataset.labels, recipe.target_sensitivity)
    auroc = macro_auroc(scores, truths)
    metadata = CheckpointMetadata(
        architecture=recipe.architecture,
        labels=list(dataset.labels),
        input_size=recipe.input_size,
        thresholds=thresholds,
        default_threshold=0.5,
        version=recipe.version,
        kind=ModelKind.CLASSIFIER.value,
        codes=dataset.code_values(),
        pixel_scale=scale,
        pixel_offset=offset,
        gate_threshold=gate,
        training=training_record(
            dataset,
            train,
            validation,
            options,
            recipe.augmentation,
            {"init": recipe.init, "balance": recipe.balance, "target_sensitivity": recipe.target_sensitivity},
            history,
        ),
        metrics={} if auroc is None else {"auroc_macro": auroc},
    )
    return export(trainer.model, metadata, run_dir)
