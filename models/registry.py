"""The detector registry: the ``detector`` setting names a backend; each process loads it once and reuses it."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from models.baseline import BaselineDetector
from models.codes import require_known_labels
from models.protocol import Detector

logger = logging.getLogger(__name__)


class UnknownDetectorError(ValueError):
    pass


_FACTORIES: dict[str, Callable[[str], Detector]] = {
    "baseline": lambda _argument: BaselineDetector(),
}

_loaded: dict[str, Detector] = {}
_lock = threading.Lock()


def available() -> list[str]:
    return sorted(_FACTORIES)


def load_detector(name: str) -> Detector:
    """``name`` is ``backend`` or ``backend:argument``; loaded once per process, validated against the code table."""
    with _lock:
        if name in _loaded:
            return _loaded[name]
        backend, _, argument = name.partition(":")
        factory = _FACTORIES.get(backend)
        if factory is None:
            raise UnknownDetectorError(f"unknown detector {name!r}; available: {', '.join(available())}")
        detector = factory(argument)
        require_known_labels(detector.labels)
        logger.info("loaded detector %s %s", detector.provenance.name, detector.provenance.version)
        _loaded[name] = detector
        return detector
