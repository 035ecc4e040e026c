"""Torch datasets over a ``LabelledSet``: decoded and letterboxed exactly as the worker does before inference."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset
from torchvision import tv_tensors

from models.datasets.base import Sample, decode_sample
from models.imaging import FloatImage
from models.preprocess import Letterbox, letterbox

Transform = Callable[..., Any]


class PreparedImages:
    """Decode and letterbox each image once (``models.imaging`` + ``models.preprocess``), kept in a bounded cache
    (2,048 images at 1024 px is 8 GiB; at 224 px, 400 MiB)."""

    def __init__(self, size: int, capacity: int = 2048) -> None:
        self.size, self.capacity = size, capacity
        self._cache: OrderedDict[str, tuple[FloatImage, Letterbox]] = OrderedDict()

    def get(self, sample: Sample) -> tuple[FloatImage, Letterbox]:
        key = str(sample.image)
        if key in self._cache:
            self._cache.move_to_end(key)
            array, transform = self._cache[key]
            return array.copy(), transform
        array, transform = letterbox(decode_sample(sample).pixels, self.size)
        self._cache[key] = (array.copy(), transform)
        if len(self._cache) > self.capacity:
            self._cache.popitem(last=False)
        return array, transform


def multi_hot(sample: Sample, labels: Sequence[str]) -> torch.Tensor:
    return torch.tensor([1.0 if name in sample.labels else 0.0 for name in labels], dtype=torch.float32)


class ClassificationData(Dataset[tuple[torch.Tensor, torch.Tensor]]):
    def __init__(
        self,
        samples: Sequence[Sample],
        labels: Sequence[str],
        images: PreparedImages,
        transform: Transform | None,
        pixel_scale: float,
        pixel_offset: float,
    ) -> None:
        self.samples, self.labels, self.images, self.transform = list(samples), list(labels), images, transform
        self.scale, self.offset = pixel_scale, pixel_offset

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        sample = self.samples[index]
        array, _ = self.images.get(sample)
        image = torch.from_numpy(array)[None]
        if self.transform is not None:
            image = self.transform(image)
        return image * self.scale + self.offset, multi_hot(sample, self.labels)


class DetectionData(Dataset[tuple[torch.Tensor, dict[str, torch.Tensor]]]):
    """Targets in model-input pixels; class i+1 is ``labels[i]``; an image with no box is a negative example."""

    def __init__(
        self, samples: Sequence[Sample], labels: Sequence[str], images: PreparedImages, transform: Transform | None
    ) -> None:
        self.samples, self.images, self.transform = list(samples), images, transform
        self.index = {name: i + 1 for i, name in enumerate(labels)}

    def __len__(self) -> int:
        return len(self.samples)

    def target(self, sample: Sample, transform: Letterbox) -> dict[str, torch.Tensor]:
        kept = [a for a in sample.annotations if a.label in self.index]
        boxes = [transform.to_model(a.box.as_tuple()) for a in kept]
        return {
            "boxes": torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
            "labels": torch.tensor([self.index[a.label] for a in kept], dtype=torch.int64),
        }

    def __getitem__(self, index: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        sample = self.samples[index]
        array, transform = self.images.get(sample)
        image = torch.from_numpy(np.repeat(array[None], 3, axis=0))
        target = self.target(sample, transform)
        if self.transform is not None:
            size = (self.images.size, self.images.size)
            boxed = {
                "boxes": tv_tensors.BoundingBoxes(target["boxes"], format="XYXY", canvas_size=size),
                "labels": target["labels"],
            }
            image, boxed = self.transform(tv_tensors.Image(image), boxed)
            target = {"boxes": boxed["boxes"].as_subclass(torch.Tensor), "labels": boxed["labels"]}
        return image.as_subclass(torch.Tensor), target


def collate_detection(
    batch: list[tuple[torch.Tensor, dict[str, torch.Tensor]]],
) -> tuple[list[torch.Tensor], list[dict[str, torch.Tensor]]]:
    return [image for image, _ in batch], [target for _, target in batch]
