"""cxr.scp_process and dicom_node.scp.SharedPortServer: ``cxr scp`` in several processes on one port; associations
spread across them, every instance is stored and acknowledged as before, each study becomes one job, and stopping the
parent stops them all."""

from __future__ import annotations

import re
import signal
import socket
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pydicom
import pytest

from db import jobs
from tests.helpers.flow import node_database, write_copies
from tests.helpers.node import split_node_config, start_cxr
from tests.helpers.peers import free_port, storescu, wait_for_port
from tests.helpers.scp import wait_for

pytestmark = pytest.mark.integration

ASSOCIATIONS = 16


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def test_associations_spread_across_processes_and_each_study_is_one_job(tmp_path: Path, rg1: Path) -> None:
    port = free_port()
    config = split_node_config(tmp_path, "", port, free_port(), "")
    config.write_text(
        config.read_text().replace("completion_debounce_s = 0\n", "completion_debounce_s = 0\nprocesses = 2\n")
    )
    files = write_copies(pydicom.dcmread(rg1), tmp_path / "studies", ASSOCIATIONS, "processes")
    log = tmp_path / "scp.log"
    with node_database(f"sqlite:///{tmp_path / 'var' / 'cxr.sqlite'}") as sessions:
        scp = start_cxr("scp", config, log)
        try:
            wait_for_port(port, timeout_s=60)
            wait_for(lambda: log.read_text().count("listening on") == 2, timeout_s=60)
            with ThreadPoolExecutor(max_workers=4) as pool:  # four associations at a time, 16 in all
                results = list(pool.map(lambda path: storescu(path, port).returncode, files))
            assert results == [0] * ASSOCIATIONS
            wait_for(lambda: len(_jobs(sessions)) == ASSOCIATIONS, timeout_s=30)
        finally:
            scp.send_signal(signal.SIGTERM)
            scp.wait(timeout=30)
        assert sorted(_jobs(sessions)) == sorted(set(_jobs(sessions))), "one job per study"
    stored_by = set(re.findall(r"scp\[(\d+)\] dicom_node\.ingest: stored instance", log.read_text()))
    assert len(stored_by) == 2, "both processes took associations"
    assert not _listening(port), "stopping the parent stopped every process"


def _jobs(sessions: object) -> list[int]:
    with sessions() as s:  # type: ignore[operator]
        return [j.study_id for j in jobs.list_jobs(s)]
