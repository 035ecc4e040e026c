"""``two-stage:<classifier>+<detector>``: the origin projects' dual-stage approach.

The classifier reads every image; the detector runs only on those the classifier calls abnormal, and its boxes are
the findings. Classifier labels the detector did not localise stay as image-level findings (no box).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from models.imaging import DecodedImage
from models.protocol import Detector, Finding, ImageResult, Provenance, working_long_side


class TwoStageDetector:
    def __init__(self, classifier: Detector, detector: Detector) -> None:
        self.classifier, self.detector = classifier, detector
        self.labels = tuple(sorted(set(classifier.labels) | set(detector.labels)))
        self.abnormal_threshold = classifier.abnormal_threshold
        sides = (working_long_side(classifier), working_long_side(detector))
        self.working_long_side = None if None in sides else max(side or 0 for side in sides)
        c, d = classifier.provenance, detector.provenance
        combined = hashlib.sha256(f"{c.weights_sha256 or '-'}+{d.weights_sha256 or '-'}".encode()).hexdigest()
        self.provenance = Provenance(
            name=f"two-stage {c.name} + {d.name}",
            version=f"{c.version}+{d.version}",
            weights_sha256=combined,
            parameters={
                "classifier": f"{c.name} {c.version}",
                "detector": f"{d.name} {d.version}",
                "classifier_sha256": c.weights_sha256 or "-",
                "detector_sha256": d.weights_sha256 or "-",
                "gate": f"abnormality ≥ {classifier.abnormal_threshold:g}",
            },
        )

    def detect(self, images: Sequence[DecodedImage]) -> list[ImageResult]:
        gated = self.classifier.detect(images)
        abnormal = [i for i, r in enumerate(gated) if r.abnormality_score >= self.classifier.abnormal_threshold]
        located = dict(zip(abnormal, self.detector.detect([images[i] for i in abnormal]), strict=True))
        results = []
        for i, first in enumerate(gated):
            second = located.get(i)
            if second is None:
                results.append(ImageResult(first.abnormality_score, (), None))
                continue
            boxed = {f.label for f in second.findings}
            unlocated = tuple(Finding(f.label, f.probability, None) for f in first.findings if f.label not in boxed)
            results.append(ImageResult(first.abnormality_score, second.findings + unlocated, first.heatmap))
        return results
