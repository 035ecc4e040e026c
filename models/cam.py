"""Grad-CAM localisation for image classifiers (the ``grad-cam`` library), shared by ``xrv:`` and ``classifier:``.

For every label above its threshold, one Grad-CAM pass on the given layer over the images where it is positive; the
heat at or above a fraction of its maximum, largest connected region, becomes the finding's box, mapped back to source
pixels through the letterbox.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import cv2
import numpy as np
import numpy.typing as npt
import torch
from pytorch_grad_cam import GradCAM
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
from torch import nn

from models.imaging import FloatImage
from models.preprocess import Letterbox
from models.protocol import Box, Finding, ImageResult

Output = tuple[int, str]
"""(the model's output index, the finding label it reports)."""


def heat_over_content(cam: FloatImage, transform: Letterbox) -> FloatImage:
    """The heat over the image only (the padding cut away), so it has the source's aspect ratio."""
    rows, cols = transform.content
    return np.ascontiguousarray(cam[rows, cols])


def box_from_heat(cam: FloatImage, transform: Letterbox, fraction: float) -> Box | None:
    peak = float(cam.max())
    if peak <= 0:
        return None
    mask = (cam >= fraction * peak).astype(np.uint8)
    count, _, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    if count < 2:
        return None
    largest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    x, y, w, h = (int(v) for v in stats[largest, :4])
    x0, y0, x1, y1 = transform.to_source((float(x), float(y), float(x + w), float(y + h)))
    return Box(x0, y0, x1, y1) if x1 > x0 and y1 > y0 else None


def _copy_of_output(_module: nn.Module, _inputs: object, output: torch.Tensor) -> torch.Tensor:
    return output.clone()


class CamLocaliser:
    """Grad-CAM on ``target_layer``, hooked only while a CAM is computed.

    Hooks held for the model's lifetime fired on every classification too, and grad-cam kept each activation until
    the next CAM: a leak on a node whose studies are mostly normal.
    """

    def __init__(self, model: nn.Module, target_layer: nn.Module, heat_fraction: float) -> None:
        self.model, self.target_layer = model, target_layer
        self.heat_fraction = heat_fraction

    def results(
        self,
        batch: torch.Tensor,
        probabilities: npt.NDArray[np.float32],
        outputs: Sequence[Output],
        transforms: Sequence[Letterbox],
        positive: Callable[[int, float], bool],
    ) -> list[ImageResult]:
        """One result per image: positive labels as findings with their CAM box; every label as a candidate."""
        positives = {
            index: [i for i in range(len(transforms)) if positive(index, float(probabilities[i, index]))]
            for index, _ in outputs
        }
        heat = self._heat(batch, positives)
        results = []
        for i, transform in enumerate(transforms):
            findings, maps = [], []
            for index, label in outputs:
                cam = heat.get((i, index))
                if cam is None:
                    continue
                maps.append(cam)
                findings.append(
                    Finding(label, float(probabilities[i, index]), box_from_heat(cam, transform, self.heat_fraction))
                )
            findings.sort(key=lambda f: -f.probability)
            candidates = tuple(Finding(label, float(probabilities[i, index]), None) for index, label in outputs)
            score = max((float(probabilities[i, index]) for index, _ in outputs), default=0.0)
            heatmap = heat_over_content(np.max(maps, axis=0), transform) if maps else None
            results.append(ImageResult(score, tuple(findings), heatmap, candidates))
        return results

    def _heat(self, batch: torch.Tensor, positives: dict[int, list[int]]) -> dict[tuple[int, int], FloatImage]:
        heat: dict[tuple[int, int], FloatImage] = {}
        if not any(positives.values()):
            return heat
        with GradCAM(model=self.model, target_layers=[self.target_layer]) as cam:
            # Registered after grad-cam's hooks: the layer's consumers get a copy, so an in-place ReLU after the
            # layer (DenseNet's) cannot change the activation grad-cam kept. On the CPU grad-cam keeps the tensor
            # itself, on CUDA a copy, and the two devices gave different maps.
            guard = self.target_layer.register_forward_hook(_copy_of_output)
            try:
                for index, members in positives.items():
                    if members:
                        cams = cam(input_tensor=batch[members], targets=[ClassifierOutputTarget(index)] * len(members))
                        heat.update(
                            {
                                (member, index): map_.astype(np.float32)
                                for member, map_ in zip(members, cams, strict=True)
                            }
                        )
            finally:
                guard.remove()
        return heat
