"""An in-process SCP for the dicom_node tests, and polling for what it records."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from config.settings import Settings
from dicom_node.scp import StorageNode


@dataclass
class Node:
    running: StorageNode
    settings: Settings
    enqueued: list[int] = field(default_factory=list)

    @property
    def port(self) -> int:
        return self.running.port

    def spooled_files(self) -> list[Path]:
        return sorted(p for p in self.settings.spool_dir.rglob("*") if p.is_file())


def wait_for(condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError("condition not met in time")
