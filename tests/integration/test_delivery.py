"""Delivery against a real peer that is down at first: every result arrives exactly once when it comes back."""

from __future__ import annotations

import time
from pathlib import Path

import pydicom
import pytest

from db.models import JobState
from tests.helpers.node import cxr_serve, wait_for_files
from tests.helpers.peers import free_port, storescp, storescu

pytestmark = pytest.mark.integration

BACKOFF = """
[worker]
delivery_backoff_s = 1.0
delivery_backoff_max_s = 4.0
delivery_max_retries = 30
"""


def test_a_destination_down_for_20_seconds_gets_every_result_exactly_once(rg1: Path, tmp_path: Path) -> None:
    pacs_port = free_port()  # nothing listens here yet
    log = tmp_path / "receptions.log"
    with cxr_serve(tmp_path / "node", pacs_port, extra_toml=BACKOFF) as node:
        assert storescu(rg1, node.port).returncode == 0
        time.sleep(20)
        assert not (tmp_path / "pacs").exists()
        reception = ["--exec-on-reception", f"echo #f >> {log}"]
        with storescp(tmp_path / "pacs", "PACS", pacs_port, *reception):
            datasets = wait_for_files(tmp_path / "pacs", 3, timeout_s=30)
            time.sleep(6)  # longer than the longest backoff: a duplicate send would have arrived by now
        study = pydicom.dcmread(rg1, stop_before_pixels=True).StudyInstanceUID
        (job,) = node.jobs(study)
    assert job.state is JobState.DELIVERED
    assert len({ds.SOPInstanceUID for ds in datasets}) == 3
    receptions = log.read_text().split()
    assert len(receptions) == 3, f"each object once: {receptions}"
