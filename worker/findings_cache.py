"""The early-analysis cache of one analysis worker process: each image's detector result and decoded pixels.

Entries are kept within a byte budget (``worker.early_analysis_mb``: the pixels, which the overlay needs, and any heat
map), the least recently used out first. An entry larger than the budget is not kept.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

from models.imaging import DecodedImage
from models.protocol import ImageResult

CacheKey = tuple[int, int, str, int | None]
"""(instance id, revision, the model's ``Provenance.output_key``, the decode's long side)."""


@dataclass(frozen=True)
class Prepared:
    """An image's detector result and the decoded image it came from."""

    result: ImageResult
    decoded: DecodedImage

    @property
    def nbytes(self) -> int:
        heatmap = self.result.heatmap
        return self.decoded.pixels.nbytes + (heatmap.nbytes if heatmap is not None else 0)


class FindingsCache:
    def __init__(self, budget_bytes: int) -> None:
        self._budget = budget_bytes
        self._entries: OrderedDict[CacheKey, Prepared] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: CacheKey) -> Prepared | None:
        with self._lock:
            found = self._entries.get(key)
            if found is None:
                self.misses += 1
                return None
            self.hits += 1
            self._entries.move_to_end(key)
            return found

    def put(self, key: CacheKey, result: ImageResult, decoded: DecodedImage) -> None:
        entry = Prepared(result, decoded)
        with self._lock:
            self._forget(key)
            if entry.nbytes > self._budget:
                return
            self._entries[key] = entry
            self._bytes += entry.nbytes
            while self._bytes > self._budget:
                self._forget(next(iter(self._entries)))

    def __contains__(self, key: CacheKey) -> bool:
        with self._lock:
            return key in self._entries

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def _forget(self, key: CacheKey) -> None:
        old = self._entries.pop(key, None)
        if old is not None:
            self._bytes -= old.nbytes
