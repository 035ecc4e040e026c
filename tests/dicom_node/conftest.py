from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from db.engine import SessionFactory
from db.settings import ScpSettings, Settings
from dicom_node.scp import StorageNode, start_node


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


@pytest.fixture
def node(tmp_path: Path, session_factory: SessionFactory) -> Iterator[Node]:
    """An in-process SCP with a real database; enqueued job ids are collected instead of sent to a broker."""
    settings = Settings(
        data_dir=tmp_path / "var",
        scp=ScpSettings(host="127.0.0.1", port=0, completion_debounce_s=0, completion_poll_s=0.05, max_pdu_size=16384),
    )
    enqueued: list[int] = []
    running = start_node(settings, session_factory, enqueued.append)
    yield Node(running, settings, enqueued)
    running.stop()


def wait_for(condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError("condition not met in time")
