"""The early-analysis entries a node's analysis workers share: one file per image, in a folder of the spool.

Several analysis workers run on one host (one per core on the CPU, ``cxr.worker_process``), and a study's job may be
taken by another worker than the one that analysed its images early. Each entry is written here as well as kept in the
worker's memory, so the job finds it wherever it runs. It is a cache, not a record: a missing, unreadable or evicted
entry only means the job analyses the image itself, as it did before early analysis.

An entry is one uncompressed ``.npz`` (pixels, any heat map, and the result's numbers as JSON; read with pickling off),
named by a digest of its key, so no identifier appears in a file name. Entries live at most ``ENTRY_MAX_AGE_S`` and
together within the byte budget, oldest out first; the job that uses an entry removes it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import time
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from config.settings import Settings
from models.imaging import DecodedImage
from models.protocol import Box, Finding, ImageResult

logger = logging.getLogger(__name__)

ENTRY_MAX_AGE_S = 3600.0
"""A study waits seconds for completion; an entry an hour old belongs to a job that ran elsewhere or never came."""

SUFFIX = ".npz"


def _finding(finding: Finding) -> list[Any]:
    box = finding.box
    return [finding.label, float(finding.probability), list(map(float, box.as_tuple())) if box else None]


def _from_json(item: list[Any]) -> Finding:
    label, probability, box = item
    return Finding(label, probability, Box(*box) if box is not None else None)


def _meta(result: ImageResult, decoded: DecodedImage) -> str:
    return json.dumps(
        {
            "abnormality_score": float(result.abnormality_score),
            "findings": [_finding(f) for f in result.findings],
            "candidates": [_finding(f) for f in result.candidates],
            "spacing_mm": list(decoded.spacing_mm) if decoded.spacing_mm is not None else None,
        }
    )


def _entry(meta: dict[str, Any], arrays: Any) -> tuple[ImageResult, DecodedImage]:
    """An entry read back; a malformed one raises (KeyError, TypeError, ValueError) and counts as unreadable."""
    spacing = meta["spacing_mm"]
    result = ImageResult(
        abnormality_score=float(meta["abnormality_score"]),
        findings=tuple(_from_json(f) for f in meta["findings"]),
        heatmap=arrays["heatmap"] if "heatmap" in arrays.files else None,
        candidates=tuple(_from_json(f) for f in meta["candidates"]),
    )
    return result, DecodedImage(arrays["pixels"], (float(spacing[0]), float(spacing[1])) if spacing else None)


def node_findings(settings: Settings) -> SharedFindings:
    """The node's shared entries (``Settings.early_analysis_dir``), within ``worker.early_analysis_mb``."""
    return SharedFindings(settings.early_analysis_dir, settings.worker.early_analysis_mb * 2**20)


class SharedFindings:
    """Entries on disk, keyed by any tuple the caller makes unique to the image, its file and the model."""

    def __init__(self, directory: Path, budget_bytes: int) -> None:
        self._directory = directory
        self._budget = budget_bytes

    def path(self, key: tuple[object, ...]) -> Path:
        return self._directory / (hashlib.sha256(repr(key).encode()).hexdigest() + SUFFIX)

    def save(self, key: tuple[object, ...], result: ImageResult, decoded: DecodedImage) -> None:
        """Write the entry (atomically: a reader never sees half of one), then keep the folder within its limits."""
        arrays = {"pixels": decoded.pixels, "meta": np.array(_meta(result, decoded))}
        if result.heatmap is not None:
            arrays["heatmap"] = result.heatmap
        if sum(a.nbytes for a in arrays.values()) > self._budget:
            return
        target = self.path(key)
        partial = target.with_name(f".{target.stem}.{os.getpid()}.part")
        try:
            self._directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            with partial.open("wb") as out:
                np.savez(out, **arrays)  # type: ignore[arg-type]
            partial.replace(target)
            self.evict()
        except OSError as exc:  # a full or read-only disk costs the job its head start, nothing more
            logger.warning("early-analysis entry not shared: %s", type(exc).__name__)
            with contextlib.suppress(OSError):  # said once, above
                partial.unlink(missing_ok=True)

    def take(self, key: tuple[object, ...]) -> tuple[ImageResult, DecodedImage] | None:
        """The entry, removed from the folder; None when there is none or it cannot be read whole."""
        path = self.path(key)
        try:
            with np.load(path, allow_pickle=False) as entry:
                taken = _entry(json.loads(str(entry["meta"])), entry)
        except (FileNotFoundError, NotADirectoryError):
            return None
        except (OSError, ValueError, KeyError, TypeError, zipfile.BadZipFile) as exc:
            logger.warning("early-analysis entry unreadable (%s); the job analyses the image", type(exc).__name__)
            taken = None
        self.discard(key)
        return taken

    def __contains__(self, key: tuple[object, ...]) -> bool:
        return self.path(key).exists()

    def discard(self, key: tuple[object, ...]) -> None:
        _remove(self.path(key))

    def evict(self) -> None:
        """Entries past their age go, then the oldest until the rest fit the budget. Each save calls this, and the
        sweeper's housekeeping, so entries do not outlive their hour on a node that receives nothing more. Several
        processes may evict at once: an entry another removed first is simply gone."""
        now = time.time()
        entries: list[tuple[float, int, Path]] = []
        try:
            paths = list(self._directory.iterdir())
        except FileNotFoundError:
            return
        except OSError as exc:  # the sweeper calls this too: a folder it cannot read is said, never raised
            logger.warning("early-analysis entries not evicted: %s", type(exc).__name__)
            return
        for path in paths:  # a partial file a crash left behind ages out like an entry
            try:
                stat = path.stat()
            except OSError:
                continue  # removed by another process meanwhile
            if now - stat.st_mtime > ENTRY_MAX_AGE_S:
                _remove(path)
            elif path.suffix == SUFFIX:
                entries.append((stat.st_mtime, stat.st_size, path))
        total = sum(size for _, size, _ in entries)
        for _, size, path in sorted(entries):
            if total <= self._budget:
                break
            _remove(path)
            total -= size


def _remove(path: Path) -> None:
    """An entry that cannot be removed is left to the next eviction; its key, taken once, is not asked again."""
    try:
        path.unlink(missing_ok=True)
    except OSError as exc:
        logger.warning("early-analysis entry not removed: %s", type(exc).__name__)
