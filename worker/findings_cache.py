"""The early-analysis cache of an analysis worker: each image's detector result and decoded pixels.

Entries are kept in the process's memory within a byte budget (``worker.early_analysis_mb``: the pixels, which the
overlay needs, and any heat map), the least recently used out first; an entry larger than the budget is not kept. With
a shared tier (``worker.shared_findings``: on disk, in the spool) each entry is also written there, so a job that
another analysis worker takes finds it too; the first job to use an entry removes it from the shared tier.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

from models.imaging import DecodedImage
from models.protocol import ImageResult
from worker.shared_findings import SharedFindings

CacheKey = tuple[int, int, str, int | None, str]
"""(instance id, revision, the model's ``Provenance.output_key``, the decode's long side, the spooled file's
fingerprint: ``worker.early_analysis.file_fingerprint``)."""


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
    def __init__(self, budget_bytes: int, shared: SharedFindings | None = None) -> None:
        self._budget = budget_bytes
        self._shared = shared
        self._entries: OrderedDict[CacheKey, Prepared] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: CacheKey) -> Prepared | None:
        """The entry, from memory or else the shared tier; a job calls this, so the shared copy is removed."""
        with self._lock:
            found = self._entries.get(key)
            if found is not None:
                self._entries.move_to_end(key)
        if self._shared is not None:
            if found is None:
                taken = self._shared.take(key)
                if taken is not None:
                    found = Prepared(*taken)
                    self._keep(key, found)  # a retried job on this worker finds it again
            else:
                self._shared.discard(key)
        with self._lock:
            self.hits += found is not None
            self.misses += found is None
        return found

    def put(self, key: CacheKey, result: ImageResult, decoded: DecodedImage) -> None:
        self._keep(key, Prepared(result, decoded))
        if self._shared is not None:
            self._shared.save(key, result, decoded)

    def _keep(self, key: CacheKey, entry: Prepared) -> None:
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
            if key in self._entries:
                return True
        return self._shared is not None and key in self._shared

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def _forget(self, key: CacheKey) -> None:
        old = self._entries.pop(key, None)
        if old is not None:
            self._bytes -= old.nbytes
