"""``xrv:<weights>``: torchxrayvision classifiers (DenseNet121 at 224 px, ResNet50 at 512 px) with Grad-CAM boxes.

Weights are read from the configured weights directory through torchxrayvision's own ``cache_dir`` loading. Nothing
is ever downloaded: a missing file stops the load with an error that names the file, the folder and the address to
fetch it from. Outputs are torchxrayvision's operating-point-normalised probabilities (0.5 is each label's operating
threshold); a site may override a label's raw threshold.

Localisation: Grad-CAM on the last feature block for every label above its threshold (``models.cam``).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
import torchxrayvision as xrv

from models.cam import CamLocaliser
from models.checkpoint import WeightsMissingError, sha256_of
from models.codes import XRV_LABELS
from models.device import classification_copy, for_inference, image_batch, inference_dtype, resolve_device
from models.imaging import DecodedImage
from models.preprocess import Letterbox, letterbox_all
from models.protocol import DetectorOptions, ImageResult, Provenance

logger = logging.getLogger(__name__)

SUPPORTED = ("densenet121-res224-all", "resnet50-res512-all")
HEAT_FRACTION = 0.5
"""Grad-CAM heat at or above this fraction of the image's maximum forms the finding's region."""
XRV_RANGE = 1024.0
"""torchxrayvision expects pixels in [-1024, 1024]."""
WARM_UP = DecodedImage(np.linspace(0.0, 1.0, 64 * 64, dtype=np.float32).reshape(64, 64), None)
"""The load's warm-up input. It spans the whole range: torchxrayvision checks the first input it sees and prints a
warning to stdout when the range looks wrong."""


def weights_file(weights: str, weights_dir: Path) -> Path:
    """Where torchxrayvision's ``cache_dir`` loading looks for ``weights``; raises when it is not there."""
    if weights not in SUPPORTED:
        raise ValueError(f"unknown torchxrayvision weights {weights!r}; supported: {', '.join(SUPPORTED)}")
    url = str(xrv.models.model_urls[weights]["weights_url"])
    path = weights_dir / os.path.basename(url)
    if not path.is_file():
        raise WeightsMissingError(
            f"weights for xrv:{weights} not found: run cxr model fetch {weights} (or place {path.name}, from {url}, "
            f"in {weights_dir}); this node never downloads at run time"
        )
    return path


class XrvDetector:
    def __init__(self, weights: str, options: DetectorOptions) -> None:
        weights_dir = options.weights_dir
        path = weights_file(weights, weights_dir)
        self.device = resolve_device(options.device)
        model: Any = (
            xrv.models.DenseNet(weights=weights, cache_dir=str(weights_dir))
            if weights.startswith("dense")
            else xrv.models.ResNet(weights=weights, cache_dir=str(weights_dir))
        )
        self.model: Any = for_inference(model, self.device)  # torchxrayvision's own attributes are used below
        self.resolution = int(xrv.models.model_urls[weights]["input_resolution"])
        self.working_long_side = self.resolution
        self._outputs = [(i, str(XRV_LABELS[name])) for i, name in enumerate(model.targets) if XRV_LABELS.get(name)]
        self._apply_thresholds(weights, options.thresholds)
        self.labels = tuple(label for _, label in self._outputs)
        self.abnormal_threshold = 0.5
        unused = [n for n in model.targets if n and not XRV_LABELS.get(n)]
        if unused:
            logger.info("xrv:%s outputs without a code are not reported: %s", weights, ", ".join(unused))
        self.provenance = Provenance(
            name=f"torchxrayvision {weights}",
            version=xrv.__version__,
            weights_sha256=sha256_of(path),
            parameters={
                "input_resolution": str(self.resolution),
                "heat_fraction": f"{HEAT_FRACTION:g}",
                "thresholds": "torchxrayvision operating points"
                + (" with site overrides" if options.thresholds else ""),
            },
        )
        target = model.features[-1] if weights.startswith("dense") else model.model.layer4[-1]
        self._localiser = CamLocaliser(self.model, target, HEAT_FRACTION)
        # After the thresholds: it copies them. The convolutional body is graphed, the rest runs as written.
        self.classifier = classification_copy(
            self.model, self.device, "features" if weights.startswith("dense") else "model"
        )
        # torchxrayvision's op_norm writes into a float32 tensor it makes itself, so its thresholds stay float32.
        self.classifier.op_threshs = self.model.op_threshs
        self._probabilities(self._batch([WARM_UP])[0])

    def _apply_thresholds(self, weights: str, overrides: dict[str, float]) -> None:
        """Site overrides of a label's raw operating threshold (torchxrayvision's op_threshs)."""
        if not overrides:
            return
        thresholds = self.model.op_threshs.clone()
        by_label = {str(label): index for index, label in self._outputs}
        for label, value in overrides.items():
            if label not in by_label:
                raise ValueError(f"threshold for {label!r}: xrv:{weights} reports {sorted(by_label)}")
            thresholds[by_label[label]] = float(value)
        self.model.op_threshs = thresholds

    def threshold_setting(self, label: str, score: float) -> float:
        """The raw operating point (what ``model.thresholds`` sets here) at which ``label`` is reported from
        ``score`` up, ``score`` being on the scale of the probabilities we report: torchxrayvision's op_norm, 0.5 at
        the operating point in force, which this inverts."""
        index = {name: i for i, name in self._outputs}[label]
        point = float(self.model.op_threshs[index])
        return score * 2 * point if score < 0.5 else 1 - (1 - score) * 2 * (1 - point)

    def _batch(self, images: Sequence[DecodedImage]) -> tuple[torch.Tensor, list[Letterbox]]:
        prepared = letterbox_all([image.pixels for image in images], self.resolution)
        scale, offset = np.float32(2 * XRV_RANGE), np.float32(XRV_RANGE)
        return (
            image_batch([array * scale - offset for array, _ in prepared], self.device),
            [transform for _, transform in prepared],
        )

    def detect(self, images: Sequence[DecodedImage]) -> list[ImageResult]:
        if not images:
            return []
        batch, transforms = self._batch(images)
        return self._localiser.results(
            batch,
            self._probabilities(batch),
            self._outputs,
            transforms,
            lambda _index, probability: probability > self.abnormal_threshold,
        )

    def _probabilities(self, batch: torch.Tensor) -> npt.NDArray[np.float32]:
        with torch.no_grad():
            return np.asarray(
                self.classifier(batch.to(inference_dtype(self.device))).float().cpu().numpy(), dtype=np.float32
            )
