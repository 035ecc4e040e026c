"""models.training: training with AMP on CUDA: both trainers run in fp16 with a gradient scaler, and what they export
serves on the GPU.

Marked ``gpu``: skipped where torch sees no GPU (tests/conftest.py).
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from models.checkpoint import load_checkpoint
from models.datasets import read_dataset
from models.imaging import DecodedImage
from models.protocol import DetectorOptions
from models.registry import load_detector
from models.training.augment import Augmentation
from models.training.classifier import ClassifierRecipe, train_classifier
from models.training.detector import DetectorRecipe, train_detector
from models.training.loop import STATE_FILE, TrainOptions
from tests.helpers.synthetic import make_images, write_layout

pytestmark = pytest.mark.gpu


def test_classifier_trains_with_amp_and_its_checkpoint_serves_on_cuda(tmp_path: Path) -> None:
    images = make_images(24)
    data = write_layout("pneumonia", tmp_path / "data", images)
    recipe = ClassifierRecipe("densenet121", "scratch", 224, augmentation=Augmentation())
    options = TrainOptions(epochs=2, batch_size=8, device="cuda")
    path = train_classifier(read_dataset("pneumonia", data), recipe, options, tmp_path / "run", tmp_path)
    metadata, _ = load_checkpoint(path)
    history = metadata.training["history"]
    assert [record["epoch"] for record in history] == [1, 2]
    assert all(math.isfinite(record["loss"]) and record["images_per_second"] > 0 for record in history)
    scaler = torch.load(tmp_path / "run" / STATE_FILE, weights_only=True)["scaler"]
    assert scaler["scale"] > 0, "the fp16 gradient scaler was in use and is saved for --resume"
    detector = load_detector(f"classifier:{path}", DetectorOptions(weights_dir=tmp_path, device="cuda"))
    (result,) = detector.detect([DecodedImage(images[0].pixels, None)])
    assert 0.0 <= result.abnormality_score <= 1.0


def test_detector_trains_with_amp_on_cuda(tmp_path: Path) -> None:
    data = write_layout("csv", tmp_path / "data", make_images(16))
    recipe = DetectorRecipe("fasterrcnn_compact", "scratch", 256, augmentation=Augmentation())
    options = TrainOptions(epochs=1, batch_size=4, device="cuda")
    path = train_detector(read_dataset("csv", data), recipe, options, tmp_path / "run", tmp_path)
    (record,) = load_checkpoint(path)[0].training["history"]
    assert math.isfinite(record["loss"])
    scaler = torch.load(tmp_path / "run" / STATE_FILE, weights_only=True)["scaler"]
    assert scaler["scale"] > 0
