"""What every dataset reader returns: labelled images with optional boxes, and a patient-grouped split."""

from __future__ import annotations

import enum
import hashlib
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from models.codes import FindingLabel
from models.imaging import DecodedImage, UndecodableImageError, decode_file
from models.protocol import Box


class Split(enum.StrEnum):
    TRAIN = "train"
    VALIDATION = "validation"
    TEST = "test"


class DatasetLayoutError(ValueError):
    """The folder does not hold the layout asked for; the message names what is missing."""


@dataclass(frozen=True)
class Annotation:
    label: str
    """The dataset's own name for the finding."""
    box: Box
    """Source-pixel coordinates of the image file."""
    reader: str = ""
    """Who drew it (VinDr-CXR's radiologist id), when the dataset says."""


@dataclass(frozen=True)
class Sample:
    image: Path
    labels: frozenset[str]
    """Image-level positives, in the dataset's names; empty means no finding."""
    annotations: tuple[Annotation, ...] = ()
    group: str = ""
    """The patient, so that one patient's images never straddle splits."""
    split: Split | None = None
    """The dataset's own split, when it has one."""
    mask: Path | None = None
    """A lung mask, where the dataset ships one (COVID-19 Radiography Database)."""


@dataclass(frozen=True)
class LabelledSet:
    layout: str
    root: Path
    labels: tuple[str, ...]
    """Every label name the set uses, in a stable order: the trained model's outputs."""
    samples: tuple[Sample, ...]
    codes: Mapping[str, FindingLabel | None]
    """The dataset's names → the project's code table; None: trained on, but no code to report it with."""
    options: dict[str, str] = field(default_factory=dict)

    @property
    def has_boxes(self) -> bool:
        return any(sample.annotations for sample in self.samples)

    def code_values(self) -> dict[str, str | None]:
        return {name: (None if self.codes.get(name) is None else str(self.codes[name])) for name in self.labels}

    def subset(self, samples: Sequence[Sample]) -> LabelledSet:
        return replace(self, samples=tuple(samples))

    def describe(self) -> dict[str, Any]:
        """For a checkpoint's training record and a report: never file names or patient identifiers."""
        counts = Counter(label for sample in self.samples for label in sample.labels)
        return {
            "dataset": f"{self.layout} ({len(self.samples)} images)",
            "layout": self.layout,
            "images": len(self.samples),
            "boxes": sum(len(s.annotations) for s in self.samples),
            "no_finding": sum(1 for s in self.samples if not s.labels),
            "positives": {label: counts.get(label, 0) for label in self.labels},
            "options": dict(self.options),
        }


def assign_split(group: str, seed: int, validation: float, test: float) -> Split:
    """A stable split from a hash of the patient: the same patient lands in the same split on every run."""
    fraction = int(hashlib.sha256(f"{seed}:{group}".encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    if fraction < test:
        return Split.TEST
    return Split.VALIDATION if fraction < test + validation else Split.TRAIN


def train_or_validation(group: str, seed: int, validation: float = 0.15) -> Split:
    """For a set whose own split fixes only the test images: the rest are divided by patient."""
    return assign_split(group, seed, validation, 0.0)


def split_samples(
    dataset: LabelledSet, split: Split, seed: int = 0, validation: float = 0.15, test: float = 0.15
) -> LabelledSet:
    """The dataset's own split where it has one; otherwise a patient-grouped split by hash."""
    chosen = [
        s
        for s in dataset.samples
        if (s.split or assign_split(s.group or s.image.name, seed, validation, test)) is split
    ]
    return dataset.subset(chosen)


def decode_sample(sample: Sample) -> DecodedImage:
    """The sample's image through the serving decoder; an unreadable one is reported with its path, so that the
    engineer can find it in a set of thousands."""
    try:
        return decode_file(sample.image)
    except UndecodableImageError as exc:
        raise UndecodableImageError(f"{sample.image}: {exc}") from exc


def train_and_validation(dataset: LabelledSet, seed: int) -> tuple[LabelledSet, LabelledSet]:
    """The two splits a trainer needs; both must hold images."""
    train, validation = (split_samples(dataset, split, seed) for split in (Split.TRAIN, Split.VALIDATION))
    if not train.samples or not validation.samples:
        raise ValueError(
            f"need images in both splits: {len(train.samples)} train, {len(validation.samples)} validation"
        )
    return train, validation


def sorted_labels(names: set[str], codes: Mapping[str, FindingLabel | None]) -> tuple[str, ...]:
    """The code table's order first (a stable output order across runs), then any other names alphabetically."""
    known = [name for name in codes if name in names]
    return tuple(known + sorted(names - set(known)))


def require(path: Path, what: str) -> Path:
    if not path.exists():
        raise DatasetLayoutError(f"{what}: {path} not found")
    return path
