"""cxr.serve under a crash: one of its analysis workers killed with SIGKILL is restarted by the supervisor, the other
runs on, and the next study is analysed and delivered. Each worker computes on its share of the cores; the delivery
worker never loads torch."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pydicom
import pytest

from cxr.worker_process import threads_each
from db.models import JobState
from tests.helpers.node import cxr_serve, processes_naming, wait_for_files
from tests.helpers.peers import storescp, storescu

pytestmark = pytest.mark.integration


def analysis_workers(config: Path) -> list[int]:
    return [pid for pid in processes_naming(str(config)) if pid in set(processes_naming("--queues gpu"))]


def test_a_killed_analysis_worker_is_restarted_and_the_next_study_delivered(tmp_path: Path, rg1: Path) -> None:
    toml = "[worker]\nanalysis_processes = 2"
    with storescp(tmp_path / "pacs") as pacs_port, cxr_serve(tmp_path / "node", pacs_port, extra_toml=toml) as node:
        deadline = time.monotonic() + 60
        while len(analysis_workers(node.config)) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        first, other = analysis_workers(node.config)
        os.kill(first, signal.SIGKILL)
        while first in analysis_workers(node.config) or len(analysis_workers(node.config)) < 2:
            assert time.monotonic() < deadline, "the killed worker was not replaced"
            time.sleep(0.2)
        (second,) = set(analysis_workers(node.config)) - {other}
        assert node.process.poll() is None, "the supervisor is still running"
        (delivering,) = set(processes_naming(str(node.config))) & set(processes_naming("--queues io"))
        assert "libtorch" not in Path(f"/proc/{delivering}/maps").read_text(), "a delivery worker needs no torch"
        assert storescu(rg1, node.port).returncode == 0
        received = wait_for_files(tmp_path / "pacs", 3, timeout_s=90)
        (job,) = node.jobs(pydicom.dcmread(rg1, stop_before_pixels=True).StudyInstanceUID)
        log = node.log.read_text()
    assert len(received) == 3 and job.state is JobState.DELIVERED
    name = f"worker --queues gpu --threads {threads_each(2)}"
    assert f"{name} (process {first}) exited with -9; restarting it in 1 s" in log
    assert f"restarted {name} as process {second}" in log
