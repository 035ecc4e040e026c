"""``classifier:<name>``: an image classifier trained with ``cxr train classifier``, localised with Grad-CAM.

``<name>`` is a model registered with ``cxr model register`` (``<name>.pt`` in the weights folder), a file name
there, or an absolute path. Each output's sigmoid is compared with its threshold, tuned on the validation split at
training time; the abnormality score is the highest output, and the two-stage gate uses the threshold tuned to the
target sensitivity.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import torch

from models.architectures import build_classifier, cam_layer
from models.cam import CamLocaliser
from models.checkpoint import ModelKind, load_for_serving, sha256_of
from models.device import classification_copy, for_inference, image_batch, inference_dtype, resolve_device
from models.imaging import DecodedImage
from models.preprocess import Letterbox, letterbox_all
from models.protocol import DetectorOptions, ImageResult, Provenance
from models.tvdetector import training_parameters

logger = logging.getLogger(__name__)

HEAT_FRACTION = 0.5


class ClassifierDetector:
    def __init__(self, checkpoint: str, options: DetectorOptions) -> None:
        path, self.metadata, state = load_for_serving(checkpoint, options.weights_dir, ModelKind.CLASSIFIER)
        model = build_classifier(self.metadata.architecture, len(self.metadata.labels))
        model.load_state_dict(state)
        self.device = resolve_device(options.device)
        self.working_long_side = self.metadata.input_size
        self.model = for_inference(model, self.device)
        self._outputs = [
            (i, str(self.metadata.codes[name]))
            for i, name in enumerate(self.metadata.labels)
            if self.metadata.codes.get(name)
        ]
        unused = [name for name in self.metadata.labels if not self.metadata.codes.get(name)]
        if unused:
            logger.info("classifier:%s outputs without a code are not reported: %s", checkpoint, ", ".join(unused))
        self.labels = tuple(sorted({label for _, label in self._outputs}))
        thresholds = {**self.metadata.thresholds, **options.thresholds}
        self._thresholds = np.array(
            [thresholds.get(name, self.metadata.default_threshold) for name in self.metadata.labels], dtype=np.float32
        )
        gate = self.metadata.gate_threshold
        self.abnormal_threshold = float(gate if gate is not None else self.metadata.default_threshold)
        self.provenance = Provenance(
            name=f"classifier {self.metadata.architecture}",
            version=self.metadata.version,
            weights_sha256=sha256_of(path),
            parameters={
                **training_parameters(self.metadata),
                "gate_threshold": f"{self.abnormal_threshold:.4g}",
                **{f"threshold {k}": f"{v:.4g}" for k, v in sorted(thresholds.items())},
            },
        )
        self._localiser = CamLocaliser(self.model, cam_layer(self.model, self.metadata.architecture), HEAT_FRACTION)
        self.classifier = classification_copy(self.model, self.device)

    def _batch(self, images: Sequence[DecodedImage]) -> tuple[torch.Tensor, list[Letterbox]]:
        prepared = letterbox_all([image.pixels for image in images], self.metadata.input_size)
        scale, offset = np.float32(self.metadata.pixel_scale), np.float32(self.metadata.pixel_offset)
        return (
            image_batch([array * scale + offset for array, _ in prepared], self.device),
            [transform for _, transform in prepared],
        )

    def probabilities(self, batch: torch.Tensor) -> npt.NDArray[np.float32]:
        with torch.no_grad():
            logits = self.classifier(batch.to(inference_dtype(self.device))).float()
            return np.asarray(torch.sigmoid(logits).cpu().numpy(), dtype=np.float32)

    def detect(self, images: Sequence[DecodedImage]) -> list[ImageResult]:
        if not images:
            return []
        batch, transforms = self._batch(images)
        return self._localiser.results(
            batch,
            self.probabilities(batch),
            self._outputs,
            transforms,
            lambda index, probability: probability >= self._thresholds[index],
        )
