"""Training augmentation (torchvision transforms v2, which move boxes with the pixels).

Rotation, brightness and contrast, and a random crop always; a horizontal flip only where anatomy allows: a flipped
chest film shows the heart on the right, so a set with lateralised findings (cardiomegaly, an enlarged mediastinum or
aorta, a hiatal hernia) is never flipped.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from torchvision.transforms import v2

from models.codes import FindingLabel

LATERALISED = frozenset(
    {
        FindingLabel.CARDIOMEGALY,
        FindingLabel.HERNIA,
        FindingLabel.ENLARGED_CARDIOMEDIASTINUM,
        FindingLabel.AORTIC_ENLARGEMENT,
    }
)


@dataclass(frozen=True)
class Augmentation:
    rotation_degrees: float = 7.0
    brightness: float = 0.15
    contrast: float = 0.15
    crop_scale: float = 0.85
    """The random crop keeps at least this fraction of the image's area."""
    horizontal_flip: bool = False


def flip_allowed(labels: Iterable[str], codes: Mapping[str, FindingLabel | None]) -> bool:
    return not any(codes.get(name) in LATERALISED for name in labels)


def _photometric(augmentation: Augmentation) -> list[v2.Transform]:
    return [v2.ColorJitter(brightness=augmentation.brightness, contrast=augmentation.contrast)]


def classification_transform(augmentation: Augmentation, size: int) -> v2.Compose:
    """For a (1, size, size) float image in [0, 1]."""
    steps: list[v2.Transform] = [
        v2.RandomRotation(augmentation.rotation_degrees),
        v2.RandomResizedCrop(size, scale=(augmentation.crop_scale, 1.0), ratio=(0.9, 1.1), antialias=True),
        *_photometric(augmentation),
    ]
    if augmentation.horizontal_flip:
        steps.append(v2.RandomHorizontalFlip())
    return v2.Compose([*steps, v2.Lambda(lambda image: image.clamp(0.0, 1.0))])


def detection_transform(augmentation: Augmentation, size: int) -> v2.Compose:
    """For (image, {"boxes": BoundingBoxes, "labels": tensor}); boxes that leave the frame are dropped."""
    steps: list[v2.Transform] = [
        v2.RandomAffine(degrees=augmentation.rotation_degrees),
        v2.RandomResizedCrop(size, scale=(augmentation.crop_scale, 1.0), ratio=(0.9, 1.1), antialias=True),
        *_photometric(augmentation),
    ]
    if augmentation.horizontal_flip:
        steps.append(v2.RandomHorizontalFlip())
    return v2.Compose([*steps, v2.ClampBoundingBoxes(), v2.SanitizeBoundingBoxes(min_size=2.0)])
