"""``xrv:<weights>``: torchxrayvision classifiers (DenseNet121 at 224 px, ResNet50 at 512 px) with Grad-CAM boxes.

Weights are read from the configured weights directory through torchxrayvision's own ``cache_dir`` loading. Nothing
is ever downloaded: a missing file stops the load with an error that names the file, the folder and the address to
fetch it from. Outputs are torchxrayvision's operating-point-normalised probabilities (0.5 is each label's operating
threshold); a site may override a label's raw threshold.

Localisation: for every label above its threshold, Grad-CAM (the ``grad-cam`` library) on the last feature block;
the heat above half its maximum, largest connected region, becomes the box, mapped back through the letterbox.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt
import torch
import torchxrayvision as xrv
from pytorch_grad_cam import GradCAM
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

from models.codes import XRV_LABELS
from models.device import resolve_device
from models.imaging import DecodedImage, FloatImage
from models.preprocess import Letterbox, letterbox
from models.protocol import Box, DetectorOptions, Finding, ImageResult, Provenance

logger = logging.getLogger(__name__)

SUPPORTED = ("densenet121-res224-all", "resnet50-res512-all")
HEAT_FRACTION = 0.5
"""Grad-CAM heat at or above this fraction of the image's maximum forms the finding's region."""
XRV_RANGE = 1024.0
"""torchxrayvision expects pixels in [-1024, 1024]."""


class WeightsMissingError(FileNotFoundError):
    """The configured detector's weights are not where they must be placed; the message says what to do."""


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def weights_file(weights: str, weights_dir: Path) -> Path:
    """Where torchxrayvision's ``cache_dir`` loading looks for ``weights``; raises when it is not there."""
    if weights not in SUPPORTED:
        raise ValueError(f"unknown torchxrayvision weights {weights!r}; supported: {', '.join(SUPPORTED)}")
    url = str(xrv.models.model_urls[weights]["weights_url"])
    path = weights_dir / os.path.basename(url)
    if not path.is_file():
        raise WeightsMissingError(
            f"weights for xrv:{weights} not found: place {path.name} in {weights_dir} "
            f"(download it once from {url}); this node never downloads at run time"
        )
    return path


class XrvDetector:
    def __init__(self, weights: str, options: DetectorOptions) -> None:
        weights_dir = options.weights_dir
        path = weights_file(weights, weights_dir)
        self.device = resolve_device(options.device)
        model: Any = (xrv.models.DenseNet(weights=weights, cache_dir=str(weights_dir)) if weights.startswith("dense")
                      else xrv.models.ResNet(weights=weights, cache_dir=str(weights_dir)))
        self.model = model.to(self.device).eval()
        if self.device.type == "cuda":  # tensor cores want NHWC; on the CPU the default layout is faster
            self.model = self.model.to(memory_format=torch.channels_last)
        self.resolution = int(xrv.models.model_urls[weights]["input_resolution"])
        self._outputs = [(i, XRV_LABELS[name]) for i, name in enumerate(model.targets) if XRV_LABELS.get(name)]
        self._apply_thresholds(weights, options.thresholds)
        self.labels = tuple(str(label) for _, label in self._outputs)
        self.abnormal_threshold = 0.5
        unused = [n for n in model.targets if n and not XRV_LABELS.get(n)]
        if unused:
            logger.info("xrv:%s outputs without a code are not reported: %s", weights, ", ".join(unused))
        self.provenance = Provenance(
            name=f"torchxrayvision {weights}",
            version=xrv.__version__,
            weights_sha256=sha256_of(path),
            parameters={"input_resolution": str(self.resolution), "heat_fraction": f"{HEAT_FRACTION:g}",
                        "thresholds": "torchxrayvision operating points" + (" with site overrides"
                                                                            if options.thresholds else "")},
        )
        target = model.features[-1] if weights.startswith("dense") else model.model.layer4[-1]
        self._cam = GradCAM(model=self.model, target_layers=[target])
        self._probabilities(self._batch([DecodedImage(np.zeros((64, 64), dtype=np.float32), None)])[0])  # warm-up

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

    def _batch(self, images: Sequence[DecodedImage]) -> tuple[torch.Tensor, list[Letterbox]]:
        arrays, boxes = [], []
        for image in images:
            array, transform = letterbox(image.pixels, self.resolution)
            arrays.append(array * np.float32(2 * XRV_RANGE) - np.float32(XRV_RANGE))
            boxes.append(transform)
        tensor = torch.from_numpy(np.stack(arrays)[:, None]).to(self.device)
        if self.device.type == "cuda":
            tensor = tensor.contiguous(memory_format=torch.channels_last)
        return tensor, boxes

    def detect(self, images: Sequence[DecodedImage]) -> list[ImageResult]:
        if not images:
            return []
        batch, transforms = self._batch(images)
        probabilities = self._probabilities(batch)
        positives = {index: [i for i in range(len(images)) if probabilities[i, index] > self.abnormal_threshold]
                     for index, _ in self._outputs}
        heat = self._heat(batch, positives)
        results = []
        for i, transform in enumerate(transforms):
            findings, maps = [], []
            for index, label in self._outputs:
                cam = heat.get((i, index))
                if cam is None:
                    continue
                maps.append(cam)
                box = _box_from_heat(cam, transform)
                findings.append(Finding(str(label), float(probabilities[i, index]), box))
            findings.sort(key=lambda f: -f.probability)
            score = max((float(probabilities[i, index]) for index, _ in self._outputs), default=0.0)
            heatmap = _content(np.max(maps, axis=0), transform) if maps else None
            results.append(ImageResult(score, tuple(findings), heatmap))
        return results

    def _probabilities(self, batch: torch.Tensor) -> npt.NDArray[np.float32]:
        with torch.no_grad(), torch.autocast(self.device.type, enabled=self.device.type == "cuda"):
            return np.asarray(self.model(batch).float().cpu().numpy(), dtype=np.float32)

    def _heat(self, batch: torch.Tensor, positives: dict[int, list[int]]) -> dict[tuple[int, int], FloatImage]:
        """One Grad-CAM pass per positive label over the images where it is positive."""
        heat: dict[tuple[int, int], FloatImage] = {}
        for index, members in positives.items():
            if not members:
                continue
            cams = self._cam(input_tensor=batch[members], targets=[ClassifierOutputTarget(index)] * len(members))
            for member, cam in zip(members, cams, strict=True):
                heat[(member, index)] = cam.astype(np.float32)
        return heat


def _content(cam: FloatImage, transform: Letterbox) -> FloatImage:
    """The heat over the image only (the padding cut away), so it has the source's aspect ratio."""
    rows, cols = transform.content
    return np.ascontiguousarray(cam[rows, cols])


def _box_from_heat(cam: FloatImage, transform: Letterbox) -> Box | None:
    peak = float(cam.max())
    if peak <= 0:
        return None
    mask = (cam >= HEAT_FRACTION * peak).astype(np.uint8)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    if count < 2:
        return None
    largest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    x, y, w, h = (int(v) for v in stats[largest, :4])
    x0, y0, x1, y1 = transform.to_source((float(x), float(y), float(x + w), float(y + h)))
    return Box(x0, y0, x1, y1) if x1 > x0 and y1 > y0 else None
