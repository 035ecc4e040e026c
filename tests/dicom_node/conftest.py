from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from config.settings import ScpSettings, Settings
from db.engine import SessionFactory
from dicom_node.scp import start_node
from tests.helpers.scp import Node


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
