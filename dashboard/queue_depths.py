"""Broker queue depths, cached: the broker is asked at most every few seconds, never once per page."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

DEPTH_CACHE_S = 5.0


@dataclass
class DepthCache:
    """Broker queue depths, asked at most every few seconds."""

    read: Callable[[], dict[str, int | None]]
    _value: dict[str, int | None] = field(default_factory=dict)
    _at: float = float("-inf")
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def get(self) -> dict[str, int | None]:
        with self._lock:
            if time.monotonic() - self._at > DEPTH_CACHE_S:
                self._value, self._at = self.read(), time.monotonic()
            return dict(self._value)
