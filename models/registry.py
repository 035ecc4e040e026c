"""The detector registry: the ``detector`` setting names a backend; each process loads it once and reuses it.

Names: ``baseline``; ``xrv:<weights>`` (torchxrayvision, e.g. ``xrv:densenet121-res224-all``);
``torchvision:<name>`` and ``classifier:<name>`` (checkpoints from ``cxr train``, registered with
``cxr model register``); ``two-stage:<classifier>+<detector>``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import replace

from models.baseline import BaselineDetector
from models.codes import require_known_labels
from models.extras import needs_deep_extra
from models.protocol import Detector, DetectorOptions

logger = logging.getLogger(__name__)


class UnknownDetectorError(ValueError):
    pass


def _xrv(argument: str, options: DetectorOptions) -> Detector:
    from models.xrv import XrvDetector  # torch and torchxrayvision load only when asked for

    return XrvDetector(argument, options)


def _torchvision(argument: str, options: DetectorOptions) -> Detector:
    from models.tvdetector import TorchvisionDetector

    return TorchvisionDetector(argument, options)


def _classifier(argument: str, options: DetectorOptions) -> Detector:
    from models.classifier import ClassifierDetector

    return ClassifierDetector(argument, options)


def _two_stage(argument: str, options: DetectorOptions) -> Detector:
    from models.twostage import TwoStageDetector

    classifier, plus, detector = argument.partition("+")
    if not plus or not classifier or not detector:
        raise UnknownDetectorError(f"two-stage needs <classifier>+<detector>, got {argument!r}")
    return TwoStageDetector(load_detector(classifier, options), load_detector(detector, options))


_FACTORIES: dict[str, Callable[[str, DetectorOptions], Detector]] = {
    "baseline": lambda _argument, options: BaselineDetector(thresholds=options.thresholds),
    "xrv": _xrv,
    "torchvision": _torchvision,
    "classifier": _classifier,
    "two-stage": _two_stage,
}

_loaded: dict[tuple[object, ...], Detector] = {}
_lock = threading.RLock()  # a two-stage detector loads its parts through this function


def _record_site_thresholds(detector: Detector, options: DetectorOptions) -> None:
    """The site's thresholds, and when they were set, join the algorithm's parameters: every SR states them (TID 4019
    Algorithm Parameters), and objects made under other thresholds get other UIDs."""
    if not options.thresholds:
        return
    chosen = ", ".join(f"{label}={value:g}" for label, value in sorted(options.thresholds.items()))
    detector.provenance = replace(
        detector.provenance,
        parameters={
            **detector.provenance.parameters,
            "site thresholds": chosen,
            "site thresholds set": options.thresholds_set or "not recorded",
        },
    )


def available() -> list[str]:
    return sorted(_FACTORIES)


def load_detector(name: str, options: DetectorOptions | None = None) -> Detector:
    """``name`` is ``backend`` or ``backend:argument``; loaded once per process, validated against the code table."""
    options = options or DetectorOptions()
    key = (
        name,
        options.weights_dir,
        options.device,
        tuple(sorted(options.thresholds.items())),
        options.thresholds_set,
    )
    with _lock:
        if key in _loaded:
            return _loaded[key]
        backend, _, argument = name.partition(":")
        factory = _FACTORIES.get(backend)
        if factory is None:
            raise UnknownDetectorError(f"unknown detector {name!r}; available: {', '.join(available())}")
        with needs_deep_extra(f"detector {name!r}"):
            detector = factory(argument, options)
        require_known_labels(detector.labels)
        _record_site_thresholds(detector, options)
        logger.info("loaded detector %s %s", detector.provenance.name, detector.provenance.version)
        _loaded[key] = detector
        return detector
