"""worker.deliver against a real peer that is down at first: every result arrives exactly once when it comes back, also
through an outage as long as the default retries are made to ride out (in compressed time)."""

from __future__ import annotations

import time
from pathlib import Path

import pydicom
import pytest

from config.settings import WorkerSettings
from db.models import JobState
from tests.helpers.node import cxr_serve, wait_for_files
from tests.helpers.peers import free_port, storescp, storescu
from worker.deliver import retry_window_s

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


COMPRESSION = 60.0
"""The default backoff, in seconds, becomes the same schedule in minutes' stead: 2 s → 1/30 s, 300 s → 5 s."""


def test_a_ten_minute_outage_loses_nothing_with_the_default_retries(rg1: Path, tmp_path: Path) -> None:
    """The defaults' arithmetic is tested in tests/worker/test_retry_window.py (855 s at the shortest, more than ten
    minutes). Here the same schedule and the same retry count run 60 times faster against a 10 s outage."""
    defaults = WorkerSettings()
    compressed = defaults.model_copy(
        update={
            "delivery_backoff_s": defaults.delivery_backoff_s / COMPRESSION,
            "delivery_backoff_max_s": defaults.delivery_backoff_max_s / COMPRESSION,
        }
    )
    outage_s = 600.0 / COMPRESSION
    assert retry_window_s(compressed)[0] > outage_s
    worker = (
        f"[worker]\ndelivery_backoff_s = {compressed.delivery_backoff_s}\n"
        f"delivery_backoff_max_s = {compressed.delivery_backoff_max_s}\n"
    )
    pacs_port = free_port()
    log = tmp_path / "receptions.log"
    with cxr_serve(tmp_path / "node", pacs_port, extra_toml=worker) as node:
        assert storescu(rg1, node.port).returncode == 0
        deadline = time.monotonic() + 60
        while not any(node.delivery_states(j.job_id) for j in node.jobs()) and time.monotonic() < deadline:
            time.sleep(0.2)  # until the results are made and their first C-STOREs tried
        time.sleep(outage_s)  # the destination stays down for the compressed ten minutes after the first attempt
        reception = ["--exec-on-reception", f"echo #f >> {log}"]
        with storescp(tmp_path / "pacs", "PACS", pacs_port, *reception):
            datasets = wait_for_files(tmp_path / "pacs", 3, timeout_s=30)
            time.sleep(compressed.delivery_backoff_max_s + 1)  # a duplicate send would have arrived by now
        (job,) = node.jobs(pydicom.dcmread(rg1, stop_before_pixels=True).StudyInstanceUID)
    assert job.state is JobState.DELIVERED
    assert len({ds.SOPInstanceUID for ds in datasets}) == 3 and len(log.read_text().split()) == 3
