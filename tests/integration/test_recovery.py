"""Nothing lost: a study that arrives while the broker is down is delivered once the broker is back."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from db.models import JobState
from tests.helpers.node import cxr_serve, wait_for_files
from tests.helpers.peers import storescp, storescu
from tests.helpers.redis_server import redis_server

pytestmark = pytest.mark.integration

FAST_SWEEP = """
[worker]
queue_lease_s = 2.0
sweep_interval_s = 1.0
"""


def test_a_study_received_while_redis_is_down_is_delivered_once_it_is_back(rg1: Path, tmp_path: Path) -> None:
    with (
        redis_server(tmp_path / "redis", started=False) as redis,
        storescp(tmp_path / "pacs") as pacs_port,
        cxr_serve(tmp_path / "node", pacs_port, broker_url=redis.url, extra_toml=FAST_SWEEP) as node,
    ):
        assert storescu(rg1, node.port).returncode == 0, "the SCP acknowledges: the instance is on disk and recorded"
        deadline = time.monotonic() + 20
        while not node.jobs() and time.monotonic() < deadline:
            time.sleep(0.2)
        (job,) = node.jobs()
        assert job.state is JobState.QUEUED, "recorded although its message could not be sent"
        redis.start()
        datasets = wait_for_files(tmp_path / "pacs", 3, timeout_s=90)
        deadline = time.monotonic() + 30
        while node.jobs()[0].state is not JobState.DELIVERED and time.monotonic() < deadline:
            time.sleep(0.5)
        (job,) = node.jobs()
    assert job.state is JobState.DELIVERED and job.attempts == 1
    assert len({ds.SOPInstanceUID for ds in datasets}) == 3
