"""Weight files with the real architectures and random initial weights, written where the backends look for them.

Nothing is downloaded: the tests check loading, label order, provenance and geometry, never accuracy.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
import torchvision
import torchxrayvision as xrv

from models.architectures import build_detector
from models.checkpoint import CheckpointMetadata, save_checkpoint

VINDR_CLASSES = [
    "Aortic enlargement",
    "Atelectasis",
    "Calcification",
    "Cardiomegaly",
    "Consolidation",
    "ILD",
    "Infiltration",
    "Lung Opacity",
    "Nodule/Mass",
    "Other lesion",
    "Pleural effusion",
    "Pleural thickening",
    "Pneumothorax",
    "Pulmonary fibrosis",
]


def xrv_weights_path(weights: str, directory: Path) -> Path:
    return directory / os.path.basename(xrv.models.model_urls[weights]["weights_url"])


def write_xrv_weights(weights: str, directory: Path) -> Path:
    """The file torchxrayvision's ``cache_dir`` loading reads: a pickled DenseNet, or a ResNet state dict."""
    torch.manual_seed(0)
    path = xrv_weights_path(weights, directory)
    directory.mkdir(parents=True, exist_ok=True)
    labels = len(xrv.models.model_urls[weights]["labels"])
    # A small final layer keeps the random logits near 0 (sigmoid near 0.5) instead of saturating at 0 or 1, so
    # thresholds between the two decide, as with trained weights.
    if weights.startswith("densenet"):
        densenet = xrv.models.DenseNet(num_classes=labels)
        torch.nn.init.normal_(densenet.classifier.weight, std=1e-6)
        torch.save(densenet, path)
    else:
        resnet = torchvision.models.resnet50(num_classes=labels, weights=None)
        resnet.conv1 = torch.nn.Conv2d(1, 64, kernel_size=7, stride=2, padding=3, bias=False)
        torch.nn.init.normal_(resnet.fc.weight, std=1e-6)
        torch.save(resnet.state_dict(), path)
    return path


def write_detector_checkpoint(
    directory: Path, name: str = "vindr.pt", input_size: int = 256, default_threshold: float = 0.0
) -> Path:
    torch.manual_seed(0)
    metadata = CheckpointMetadata(
        architecture="fasterrcnn_resnet50_fpn_v2",
        labels=VINDR_CLASSES,
        input_size=input_size,
        thresholds={"Nodule/Mass": 0.0},
        default_threshold=default_threshold,
        version="test-1",
    )
    path = directory / name
    save_checkpoint(build_detector(metadata.architecture, len(VINDR_CLASSES), input_size), metadata, path)
    return path
