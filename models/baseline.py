"""The ``baseline`` detector: classical image processing, no weights, deterministic, CPU only.

1. Work at a fixed resolution (long side 512) with CLAHE, as the project's origin pipelines did.
2. Lung fields: the dark (aerated) Otsu class, without components that touch the border (air outside the body),
   grouped per side and closed with a convex hull so that opacities inside a lung are part of its field.
3. Candidates: maxima of the scale-normalised Laplacian of Gaussian (bright round blobs) centred inside a lung field.
4. Score: the blob's contrast against a surrounding ring, in units of the ring's spread, through a logistic curve.
   Large blobs are labelled Mass, the rest Nodule.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from models.codes import FindingLabel
from models.imaging import DecodedImage, FloatImage
from models.preprocess import Resize, U8Image, clahe, denoise, resize_long_side, to_uint8
from models.protocol import Box, Finding, ImageResult, Provenance

logger = logging.getLogger(__name__)

VERSION = "0.2.0"
"""0.2.0: the wider scales of the Laplacian of Gaussian computed at half resolution."""
MAX_CANDIDATES = 50
PYRAMID_SIGMA = 1.0
"""The blur ``cv2.pyrDown`` applies before halving (its 5-tap kernel's standard deviation, in full-size pixels)."""


@dataclass(frozen=True)
class BaselineParameters:
    working_size: int = 512
    sigmas: tuple[float, ...] = tuple(float(s) for s in np.geomspace(6.0, 22.0, 7))
    half_resolution_from_sigma: float = 10.0
    """Scales at least this wide are computed on the image halved and their response brought back to size: such a
    blur needs no finer detail, and there it costs a quarter of the pixels and half the kernel. On RG1 the response
    took 16 ms instead of 42, with the same findings as 0.1.0, which computed every scale in full (``math.inf`` here):
    labels equal, box IoU ≥ 0.94 (the test holds it to 0.9), probabilities within 0.03 on RG1 and RG1_J2KI
    (``tests/models/test_baseline.py``)."""
    min_response: float = 0.02
    peak_window: int = 15
    contrast_midpoint: float = 1.5
    """Contrast (in ring standard deviations) that scores 0.5."""
    contrast_slope: float = 3.0
    threshold: float = 0.5
    max_findings: int = 8
    mass_diameter_fraction: float = 0.09
    """A blob wider than this fraction of the thorax is a mass (about 3 cm on an adult PA film)."""
    mass_diameter_mm: float = 30.0


@dataclass(frozen=True)
class _Candidate:
    x: float
    y: float
    radius: float
    score: float


class BaselineDetector:
    labels: tuple[str, ...] = (FindingLabel.NODULE.value, FindingLabel.MASS.value)

    def __init__(
        self, parameters: BaselineParameters | None = None, thresholds: dict[str, float] | None = None
    ) -> None:
        self.parameters = parameters or BaselineParameters()
        self.working_long_side = self.parameters.working_size
        self.abnormal_threshold = self.parameters.threshold
        unknown = sorted(set(thresholds or {}) - set(self.labels))
        if unknown:
            raise ValueError(f"threshold for {', '.join(unknown)}: the baseline reports {', '.join(self.labels)}")
        self._thresholds = dict(thresholds or {})
        """A site's per-label thresholds; ``parameters.threshold`` for the others."""
        self.provenance = Provenance(
            name="baseline",
            version=VERSION,
            weights_sha256=None,
            parameters={
                "threshold": f"{self.parameters.threshold:g}",
                "working_size": str(self.parameters.working_size),
            },
        )

    def detect(self, images: Sequence[DecodedImage]) -> list[ImageResult]:
        return [self._detect_one(image) for image in images]

    def _detect_one(self, image: DecodedImage) -> ImageResult:
        p = self.parameters
        small, resize = resize_long_side(image.pixels, p.working_size)
        enhanced = clahe(to_uint8(small))
        mask = lung_field_mask(enhanced)
        candidates = self._candidates(small, enhanced, mask)
        thorax_width = _mask_width(mask) or small.shape[1]
        # Suppression is greedy by score, so a blob below its threshold never suppresses one above it.
        everything = [self._finding(c, resize, thorax_width, image.spacing_mm) for c in _suppress_overlaps(candidates)]
        findings = tuple(f for f in everything if f.probability >= self.threshold_for(f.label))[: p.max_findings]
        best = max((c.score for c in candidates), default=0.0)
        # Every blob below the threshold too, for evaluation (AUROC and mAP need the low scores).
        return ImageResult(
            abnormality_score=round(best, 4), findings=findings, candidates=tuple(everything[:MAX_CANDIDATES])
        )

    def threshold_for(self, label: str) -> float:
        return self._thresholds.get(label, self.parameters.threshold)

    def _candidates(self, small: FloatImage, enhanced: U8Image, mask: npt.NDArray[np.uint8]) -> list[_Candidate]:
        p = self.parameters
        response, scale_index = _log_response(
            enhanced.astype(np.float32) / 255.0, p.sigmas, p.half_resolution_from_sigma
        )
        window = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (p.peak_window, p.peak_window))
        is_peak = (response == cv2.dilate(response, window)) & (response > p.min_response) & (mask > 0)
        smooth = denoise(small, 1.5)
        candidates = []
        for y, x in np.argwhere(is_peak):
            radius = p.sigmas[int(scale_index[y, x])] * math.sqrt(2.0)
            contrast = _ring_contrast(smooth, int(x), int(y), radius)
            score = 1.0 / (1.0 + math.exp(-p.contrast_slope * (contrast - p.contrast_midpoint)))
            candidates.append(_Candidate(float(x), float(y), radius, round(score, 4)))
        # Sort by score, then position, so ties cannot reorder between runs.
        candidates.sort(key=lambda c: (-c.score, c.y, c.x))
        return candidates

    def _finding(
        self, c: _Candidate, resize: Resize, thorax_width: int, spacing_mm: tuple[float, float] | None
    ) -> Finding:
        x0, y0 = resize.to_source(c.x - c.radius, c.y - c.radius)
        x1, y1 = resize.to_source(c.x + c.radius, c.y + c.radius)
        if spacing_mm is not None:
            is_mass = (2 * c.radius / resize.scale) * spacing_mm[1] > self.parameters.mass_diameter_mm
        else:
            is_mass = 2 * c.radius > self.parameters.mass_diameter_fraction * thorax_width
        label = FindingLabel.MASS if is_mass else FindingLabel.NODULE
        box = Box(round(x0, 1), round(y0, 1), round(x1, 1), round(y1, 1))
        return Finding(label=label.value, probability=c.score, box=box)


def lung_field_mask(enhanced: U8Image) -> npt.NDArray[np.uint8]:
    """1 inside either lung field, 0 elsewhere; empty when no plausible lung is found."""
    rows, cols = enhanced.shape
    blurred = cv2.GaussianBlur(enhanced, (0, 0), 3)
    threshold, _ = cv2.threshold(blurred, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    dark = (blurred < threshold).astype(np.uint8)
    dark = np.asarray(
        cv2.morphologyEx(dark, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (7, 7))), dtype=np.uint8
    )
    count, labels, stats, centroids = cv2.connectedComponentsWithStats(dark)
    mask = np.zeros_like(dark)
    sides: dict[bool, list[int]] = {True: [], False: []}
    for i in range(1, count):
        x, y, w, h, area = (int(v) for v in stats[i])
        touches_border = x == 0 or y == 0 or x + w >= cols or y + h >= rows
        central = 0.1 * cols < centroids[i][0] < 0.9 * cols
        if touches_border or area < 0.01 * rows * cols or not central:
            continue
        sides[bool(centroids[i][0] < cols / 2)].append(i)
    for ids in sides.values():
        if ids:
            points = cv2.findNonZero(np.isin(labels, ids).astype(np.uint8))
            cv2.fillPoly(mask, [cv2.convexHull(points)], 1)
    return mask


def _log_response(
    image: FloatImage, sigmas: Sequence[float], halved_from: float
) -> tuple[FloatImage, npt.NDArray[np.intp]]:
    """Scale-normalised -σ²∇²G response, maximised over scales, and the index of the winning scale; scales from
    ``halved_from`` up are computed at half resolution."""
    half = np.asarray(cv2.pyrDown(image), dtype=np.float32) if max(sigmas) >= halved_from else image
    stack = np.stack([_scale_response(image, half, s, s >= halved_from) for s in sigmas])
    return stack.max(axis=0), stack.argmax(axis=0)


def _scale_response(image: FloatImage, half: FloatImage, sigma: float, halved: bool) -> FloatImage:
    """-σ²∇²G at one scale. The scale-normalised response is the same at any sampling, so at half size the blur is
    σ/2 (less what pyrDown applied) and the normalisation (σ/2)²."""
    if not halved:
        return -(sigma**2) * cv2.Laplacian(cv2.GaussianBlur(image, (0, 0), sigma), cv2.CV_32F, ksize=3)
    small_sigma = math.sqrt(sigma**2 - PYRAMID_SIGMA**2) / 2
    response = -((sigma / 2) ** 2) * cv2.Laplacian(cv2.GaussianBlur(half, (0, 0), small_sigma), cv2.CV_32F, ksize=3)
    # pyrDown's sample i lies on pixel 2i: back to size by sampling (x/2, y/2), not cv2.resize's pixel-centre grid.
    rows, cols = image.shape
    to_half = np.array([[0.5, 0.0, 0.0], [0.0, 0.5, 0.0]])
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    return np.asarray(
        cv2.warpAffine(response, to_half, (cols, rows), flags=flags, borderMode=cv2.BORDER_REPLICATE), dtype=np.float32
    )


def _ring_contrast(image: FloatImage, x: int, y: int, radius: float) -> float:
    outer = math.ceil(2.2 * radius)
    y0, y1 = max(0, y - outer), min(image.shape[0], y + outer + 1)
    x0, x1 = max(0, x - outer), min(image.shape[1], x + outer + 1)
    patch = image[y0:y1, x0:x1]
    yy, xx = np.ogrid[y0:y1, x0:x1]
    dist2 = (yy - y) ** 2 + (xx - x) ** 2
    inner = patch[dist2 <= radius**2]
    ring = patch[(dist2 > (1.5 * radius) ** 2) & (dist2 <= (2.2 * radius) ** 2)]
    if inner.size == 0 or ring.size == 0:
        return 0.0
    return float((inner.mean() - ring.mean()) / (ring.std() + 1e-3))


def _suppress_overlaps(candidates: list[_Candidate]) -> list[_Candidate]:
    """Greedy suppression: drop a blob whose centre lies inside a better-scoring one."""
    kept: list[_Candidate] = []
    for c in candidates:
        if all(math.hypot(c.x - k.x, c.y - k.y) > max(c.radius, k.radius) for k in kept):
            kept.append(c)
    return kept


def _mask_width(mask: npt.NDArray[np.uint8]) -> int:
    columns = np.flatnonzero(mask.any(axis=0))
    return int(columns[-1] - columns[0] + 1) if columns.size else 0
