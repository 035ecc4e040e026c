"""``torchvision:<name>``: a torchvision object detector from a checkpoint (``models.checkpoint``).

``<name>`` is a model registered with ``cxr model register`` (``<name>.pt`` in the weights folder), a file name
there, or an absolute path. ``cxr train detector`` makes these; the tests also make one from a random model.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import torch

from models.architectures import build_detector
from models.checkpoint import CheckpointMetadata, ModelKind, load_for_serving, sha256_of
from models.codes import VINDR_LABELS
from models.device import resolve_device
from models.imaging import DecodedImage
from models.preprocess import letterbox_all
from models.protocol import Box, DetectorOptions, Finding, ImageResult, Provenance

logger = logging.getLogger(__name__)


def output_codes(metadata: CheckpointMetadata) -> dict[str, str | None]:
    """Each output name's finding label; checkpoints from before codes were recorded carry VinDr-CXR's classes."""
    if metadata.codes:
        return dict(metadata.codes)
    return {name: (None if VINDR_LABELS.get(name) is None else str(VINDR_LABELS[name])) for name in metadata.labels}


def training_parameters(metadata: CheckpointMetadata) -> dict[str, str]:
    """The provenance every result object carries: what the model was trained on, and how well it did."""
    parameters = {"input_size": str(metadata.input_size)}
    if metadata.training.get("dataset"):
        parameters["trained_on"] = str(metadata.training["dataset"])[:200]
    for key in ("auroc_macro", "map_50", "f1_macro"):
        if key in metadata.metrics:
            parameters[f"validation_{key}"] = f"{float(metadata.metrics[key]):.4f}"
    return parameters


class TorchvisionDetector:
    def __init__(self, checkpoint: str, options: DetectorOptions) -> None:
        path, self.metadata, state = load_for_serving(checkpoint, options.weights_dir, ModelKind.DETECTOR)
        model = build_detector(self.metadata.architecture, len(self.metadata.labels), self.metadata.input_size)
        model.load_state_dict(state)
        self.device = resolve_device(options.device)
        self.working_long_side = self.metadata.input_size
        self.model = model.to(self.device).eval()
        codes = output_codes(self.metadata)
        self._codes = {i + 1: codes.get(name) for i, name in enumerate(self.metadata.labels)}
        self.labels = tuple(sorted({label for label in self._codes.values() if label is not None}))
        self._thresholds = {**self.metadata.thresholds, **options.thresholds}
        self.abnormal_threshold = self.metadata.default_threshold
        self.provenance = Provenance(
            name=f"torchvision {self.metadata.architecture}",
            version=self.metadata.version,
            weights_sha256=sha256_of(path),
            parameters={
                **training_parameters(self.metadata),
                "default_threshold": f"{self.metadata.default_threshold:g}",
                **{f"threshold {k}": f"{v:g}" for k, v in sorted(self._thresholds.items())},
            },
        )

    def threshold(self, label: str) -> float:
        return self._thresholds.get(label, self.metadata.default_threshold)

    def detect(self, images: Sequence[DecodedImage]) -> list[ImageResult]:
        if not images:
            return []
        prepared = letterbox_all([image.pixels for image in images], self.metadata.input_size)
        # One grey channel crosses to the device and is viewed as the three the network takes.
        tensors = [torch.from_numpy(array).to(self.device).expand(3, -1, -1) for array, _ in prepared]
        with torch.no_grad(), torch.autocast(self.device.type, enabled=self.device.type == "cuda"):
            outputs = self.model(tensors)
        results = []
        for (_, transform), output in zip(prepared, outputs, strict=True):
            findings, candidates = [], []
            for box, class_index, score in zip(
                output["boxes"].float().cpu().tolist(),
                output["labels"].cpu().tolist(),
                output["scores"].float().cpu().tolist(),
                strict=True,
            ):
                name = self.metadata.labels[class_index - 1]
                label = self._codes.get(class_index)
                x0, y0, x1, y1 = transform.to_source((box[0], box[1], box[2], box[3]))
                if label is None or not (x1 > x0 and y1 > y0):
                    continue
                finding = Finding(label, float(score), Box(x0, y0, x1, y1))
                candidates.append(finding)
                if score >= self.threshold(name):
                    findings.append(finding)
            score = max((f.probability for f in findings), default=0.0)
            results.append(
                ImageResult(score, tuple(sorted(findings, key=lambda f: -f.probability)), None, tuple(candidates))
            )
        return results
