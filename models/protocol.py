"""The Detector protocol and the typed results every backend returns."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from models.imaging import DecodedImage, FloatImage


@dataclass(frozen=True)
class Box:
    """A rectangle in source-pixel coordinates: (0, 0) is the top-left corner of the top-left pixel."""

    x_min: float
    y_min: float
    x_max: float
    y_max: float

    def as_tuple(self) -> tuple[float, float, float, float]:
        return self.x_min, self.y_min, self.x_max, self.y_max

    def inside(self, rows: int, columns: int) -> bool:
        return 0 <= self.x_min < self.x_max <= columns and 0 <= self.y_min < self.y_max <= rows

    def iou(self, other: Box) -> float:
        ix = max(0.0, min(self.x_max, other.x_max) - max(self.x_min, other.x_min))
        iy = max(0.0, min(self.y_max, other.y_max) - max(self.y_min, other.y_min))
        inter = ix * iy
        union = self.area() + other.area() - inter
        return inter / union if union > 0 else 0.0

    def area(self) -> float:
        return (self.x_max - self.x_min) * (self.y_max - self.y_min)


@dataclass(frozen=True)
class Finding:
    label: str
    """A label from ``models.codes``; the code table gives its coded concept."""
    probability: float
    box: Box | None


@dataclass(frozen=True)
class ImageResult:
    abnormality_score: float
    findings: tuple[Finding, ...]
    heatmap: FloatImage | None = field(default=None, compare=False, repr=False)
    """Optional localisation heat in [0, 1], any resolution with the source's aspect ratio (e.g. a Grad-CAM)."""
    candidates: tuple[Finding, ...] = field(default=(), compare=False, repr=False)
    """Every output before the operating thresholds (each label's image score, every proposed box), for evaluation:
    AUROC and mAP need the scores below the threshold too. Empty when the backend keeps none."""


@dataclass(frozen=True)
class Provenance:
    """Identifies the algorithm in every result object (DICOM TID 4019)."""

    name: str
    version: str
    weights_sha256: str | None = None
    parameters: dict[str, str] = field(default_factory=dict)

    @property
    def model_id(self) -> str:
        """The model: its name, version and weights. A new one starts a new period for the drift watch, and the
        thresholds a site calibrated name the model they were chosen for."""
        return f"{self.name}:{self.version}:{self.weights_sha256 or '-'}"

    @property
    def output_key(self) -> str:
        """What result UIDs derive from: the model and its parameters, so new weights, a new version or other
        operating thresholds give new objects, and the same ones give the same objects."""
        parameters = ";".join(f"{key}={value}" for key, value in sorted(self.parameters.items()))
        return f"{self.model_id}:{parameters}"


@dataclass(frozen=True)
class DetectorOptions:
    """What a backend needs from the site: where weights lie, which device, and per-label threshold overrides."""

    weights_dir: Path = Path("weights")
    device: str = "auto"
    thresholds: dict[str, float] = field(default_factory=dict)
    thresholds_set: str | None = None
    """When the site set ``thresholds`` (an ISO date, written by ``cxr validate thresholds --apply``)."""


class Detector(Protocol):
    provenance: Provenance
    labels: tuple[str, ...]
    abnormal_threshold: float

    def detect(self, images: Sequence[DecodedImage]) -> list[ImageResult]:
        """One result per input image, in order."""
        ...


def working_long_side(detector: object) -> int | None:
    """The long side, in pixels, of the image a detector looks at (its optional ``working_long_side``); None when it
    needs the whole image or does not say. Decoding more than this is wasted (``models.j2k``)."""
    value = getattr(detector, "working_long_side", None)
    return value if isinstance(value, int) and value > 0 else None
