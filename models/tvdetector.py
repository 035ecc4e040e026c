"""``torchvision:<checkpoint>``: a torchvision object detector for VinDr-CXR's classes, from a checkpoint file.

A checkpoint is one ``torch.save`` dictionary: the architecture's name, its ``state_dict``, and the metadata the
worker needs (labels in class order, input size, per-label score thresholds, version). ``save_checkpoint`` writes it;
the training command produces these, and the tests make one from a randomly initialised model.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torchvision.models import detection

from models.codes import VINDR_LABELS
from models.device import resolve_device
from models.imaging import DecodedImage
from models.preprocess import letterbox
from models.protocol import Box, DetectorOptions, Finding, ImageResult, Provenance
from models.xrv import WeightsMissingError, sha256_of

logger = logging.getLogger(__name__)

ARCHITECTURES: dict[str, Callable[..., nn.Module]] = {
    "fasterrcnn_resnet50_fpn_v2": detection.fasterrcnn_resnet50_fpn_v2,
    "retinanet_resnet50_fpn_v2": detection.retinanet_resnet50_fpn_v2,
}
FORMAT = 1


@dataclass(frozen=True)
class CheckpointMetadata:
    architecture: str
    labels: list[str]
    """Class names in order; class index i+1 is labels[i] (0 is the background)."""
    input_size: int = 1024
    thresholds: dict[str, float] = field(default_factory=dict)
    default_threshold: float = 0.5
    version: str = "0"
    format: int = FORMAT


def build_model(metadata: CheckpointMetadata) -> nn.Module:
    if metadata.architecture not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {metadata.architecture!r}; known: {', '.join(ARCHITECTURES)}")
    # No pretrained download: every weight comes from the checkpoint. The model's own transform must not resize the
    # letterboxed input again.
    return ARCHITECTURES[metadata.architecture](weights=None, weights_backbone=None,
                                                 num_classes=len(metadata.labels) + 1,
                                                 min_size=metadata.input_size, max_size=metadata.input_size)


def save_checkpoint(model: nn.Module, metadata: CheckpointMetadata, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"metadata": asdict(metadata), "state_dict": model.state_dict()}, path)


def load_checkpoint(path: Path) -> tuple[CheckpointMetadata, dict[str, Any]]:
    if not path.is_file():
        raise WeightsMissingError(f"detector checkpoint not found: place {path.name} in {path.parent} "
                                  "(a checkpoint written by models.tvdetector.save_checkpoint)")
    content = torch.load(path, map_location="cpu", weights_only=True)  # tensors and plain data only: no code runs
    metadata = CheckpointMetadata(**content["metadata"])
    if metadata.format != FORMAT:
        raise ValueError(f"{path.name}: checkpoint format {metadata.format}, this release reads {FORMAT}")
    return metadata, content["state_dict"]


class TorchvisionDetector:
    def __init__(self, checkpoint: str, options: DetectorOptions) -> None:
        path = Path(checkpoint) if Path(checkpoint).is_absolute() else options.weights_dir / checkpoint
        self.metadata, state = load_checkpoint(path)
        model = build_model(self.metadata)
        model.load_state_dict(state)
        self.device = resolve_device(options.device)
        self.model = model.to(self.device).eval()
        self._codes = {i + 1: VINDR_LABELS.get(name) for i, name in enumerate(self.metadata.labels)}
        self.labels = tuple(sorted({str(label) for label in self._codes.values() if label is not None}))
        self._thresholds = {**self.metadata.thresholds, **options.thresholds}
        self.abnormal_threshold = self.metadata.default_threshold
        self.provenance = Provenance(
            name=f"torchvision {self.metadata.architecture}",
            version=self.metadata.version,
            weights_sha256=sha256_of(path),
            parameters={"input_size": str(self.metadata.input_size),
                        "default_threshold": f"{self.metadata.default_threshold:g}",
                        **{f"threshold {k}": f"{v:g}" for k, v in sorted(self._thresholds.items())}},
        )

    def threshold(self, label: str) -> float:
        return self._thresholds.get(label, self.metadata.default_threshold)

    def detect(self, images: Sequence[DecodedImage]) -> list[ImageResult]:
        if not images:
            return []
        prepared = [letterbox(image.pixels, self.metadata.input_size) for image in images]
        tensors = [torch.from_numpy(np.repeat(array[None], 3, axis=0)).to(self.device) for array, _ in prepared]
        with torch.no_grad(), torch.autocast(self.device.type, enabled=self.device.type == "cuda"):
            outputs = self.model(tensors)
        results = []
        for (_, transform), output in zip(prepared, outputs, strict=True):
            findings = []
            for box, class_index, score in zip(output["boxes"].float().cpu().tolist(),
                                               output["labels"].cpu().tolist(), output["scores"].float().cpu().tolist(),
                                               strict=True):
                name = self.metadata.labels[class_index - 1]
                label = self._codes.get(class_index)
                if label is None or score < self.threshold(name):
                    continue
                x0, y0, x1, y1 = transform.to_source((box[0], box[1], box[2], box[3]))
                if x1 > x0 and y1 > y0:
                    findings.append(Finding(str(label), float(score), Box(x0, y0, x1, y1)))
            score = max((f.probability for f in findings), default=0.0)
            results.append(ImageResult(score, tuple(sorted(findings, key=lambda f: -f.probability))))
        return results
