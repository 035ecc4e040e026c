"""What both trainers write at the end: the checkpoint with its metadata, and its sha256."""

from __future__ import annotations

import datetime
from dataclasses import asdict
from pathlib import Path
from typing import Any

from torch import nn

from models.checkpoint import CheckpointMetadata, save_checkpoint
from models.datasets.base import LabelledSet
from models.training.augment import Augmentation
from models.training.loop import EpochRecord, TrainOptions

MODEL_FILE = "model.pt"


def training_record(
    dataset: LabelledSet,
    train: LabelledSet,
    validation: LabelledSet,
    options: TrainOptions,
    augmentation: Augmentation,
    recipe: dict[str, Any],
    history: list[EpochRecord],
) -> dict[str, Any]:
    """A description of the training data and run, without file names or patient identifiers."""
    return {
        **dataset.describe(),
        "train_images": len(train.samples),
        "validation_images": len(validation.samples),
        "epochs": options.epochs,
        "batch_size": options.batch_size,
        "learning_rate": options.learning_rate,
        "seed": options.seed,
        "augmentation": asdict(augmentation),
        **recipe,
        "history": [vars(record) for record in history],
    }


def export(model: nn.Module, metadata: CheckpointMetadata, run_dir: Path) -> Path:
    path = run_dir / MODEL_FILE
    created = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    save_checkpoint(model.cpu(), CheckpointMetadata(**{**asdict(metadata), "created": created}), path)
    return path
