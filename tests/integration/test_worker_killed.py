"""A worker killed with SIGKILL mid-analysis, three times, under load: every study is delivered, each object once."""

from __future__ import annotations

import copy
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pydicom
import pytest

from db import repository
from db.engine import make_engine, make_session_factory
from db.migrate import upgrade
from db.models import JobState
from tests.helpers.databases import redis_broker
from tests.helpers.peers import free_port, storescp, wait_for_port
from tests.worker.encode_cases import derived_uid

pytestmark = pytest.mark.integration

STUDIES = 20
KILLS = 3


def copies(rg1: pydicom.Dataset, directory: Path) -> list[Path]:
    directory.mkdir()
    paths = []
    for i in range(STUDIES):
        ds = copy.deepcopy(rg1)
        ds.StudyInstanceUID = derived_uid("killed-study", str(i))
        ds.SeriesInstanceUID = derived_uid("killed-series", str(i))
        ds.SOPInstanceUID = derived_uid("killed-instance", str(i))
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        paths.append(directory / f"{i:02d}.dcm")
        ds.save_as(paths[-1], enforce_file_format=True)
    return paths


def start(command: str, config: Path, log: Path, *extra: str) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CXR_")}
    with log.open("ab") as sink:
        return subprocess.Popen([sys.executable, "-m", "cxr", command, *extra, "--config", str(config)],
                                stdout=sink, stderr=subprocess.STDOUT, env=env)


def test_sigkilled_worker_loses_and_duplicates_nothing(rg1_dataset: pydicom.Dataset, tmp_path: Path) -> None:
    broker = redis_broker()
    port = free_port()
    database_url = f"sqlite:///{tmp_path / 'var' / 'cxr.sqlite'}"
    log = tmp_path / "node.log"
    receptions = tmp_path / "receptions.log"
    with storescp(tmp_path / "pacs", "PACS", None, "--exec-on-reception", f"echo #f >> {receptions}") as pacs:
        config = tmp_path / "cxr.toml"
        config.write_text(
            f'data_dir = "{tmp_path / "var"}"\nbroker_url = "{broker}"\n'
            f'[scp]\nhost = "127.0.0.1"\nport = {port}\ncompletion_debounce_s = 0\n'
            '[worker]\nqueue_lease_s = 5.0\nanalysis_lease_s = 5.0\nsweep_interval_s = 1.0\nmax_attempts = 6\n'
            f'[[destinations]]\nname = "pacs"\nae_title = "PACS"\nhost = "127.0.0.1"\nport = {pacs}\n'
        )
        upgrade(database_url)
        parts = [start("scp", config, log), start("worker", config, log, "--queues", "io"),
                 start("sweeper", config, log)]
        gpu = start("worker", config, log, "--queues", "gpu")
        engine = make_engine(database_url)
        sessions = make_session_factory(engine)

        def jobs() -> list[JobState]:
            with sessions() as s:
                return [j.state for j in repository.list_jobs(s)]

        def attempts() -> list[int]:
            with sessions() as s:
                return [j.attempts for j in repository.list_jobs(s)]

        try:
            wait_for_port(port)
            files = copies(rg1_dataset, tmp_path / "studies")
            assert subprocess.run(["storescu", "-aec", "CXR_AI", "127.0.0.1", str(port), *map(str, files)],
                                  capture_output=True).returncode == 0
            for _ in range(KILLS):
                deadline = time.monotonic() + 60
                while JobState.ANALYZING not in jobs() and time.monotonic() < deadline:
                    time.sleep(0.05)
                gpu.send_signal(signal.SIGKILL)  # mid-analysis: no warm shutdown, no acknowledgement
                gpu.wait()
                gpu = start("worker", config, log, "--queues", "gpu")
            deadline = time.monotonic() + 240
            while (jobs().count(JobState.DELIVERED) < STUDIES) and time.monotonic() < deadline:
                time.sleep(0.5)
            time.sleep(3)  # any duplicate delivery would arrive now
            states, tries = jobs(), attempts()
        finally:
            for process in [*parts, gpu]:
                process.terminate()
            for process in [*parts, gpu]:
                process.wait(timeout=60)
            engine.dispose()
    assert states.count(JobState.DELIVERED) == STUDIES, states
    assert sum(1 for t in tries if t >= 2) >= 1, f"the kills interrupted analyses: attempts {tries}"
    received = receptions.read_text().split()
    assert len(received) == 3 * STUDIES, f"each object exactly once: {len(received)} receptions"
    sop_uids = [pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID for p in (tmp_path / "pacs").iterdir()]
    assert len(set(sop_uids)) == len(sop_uids) == 3 * STUDIES
