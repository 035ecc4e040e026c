"""A poison study: every attempt kills its worker. It ends DEAD_LETTER after N attempts; the other studies flow past."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pydicom
import pytest

from db import jobs
from db.engine import make_engine, make_session_factory
from db.migrate import upgrade
from db.models import JobState
from tests.helpers.databases import redis_broker
from tests.helpers.flow import copies, write_copies
from tests.helpers.node import split_node, split_node_config
from tests.helpers.peers import free_port, storescp, wait_for_port

pytestmark = pytest.mark.integration

ATTEMPTS = 3


def poison_instances(rg1: pydicom.Dataset, study_uid: str, directory: Path) -> list[Path]:
    """Three more images in the poison study."""
    return write_copies(rg1, directory, 3, "poison", study_uid)


def test_a_study_that_always_kills_its_worker_is_dead_lettered(rg1_dataset: pydicom.Dataset, tmp_path: Path) -> None:
    broker = redis_broker("poison")
    port = free_port()
    database_url = f"sqlite:///{tmp_path / 'var' / 'cxr.sqlite'}"
    log = tmp_path / "node.log"
    files = copies(rg1_dataset, tmp_path / "studies")
    poison_uid = str(pydicom.dcmread(files[0], stop_before_pixels=True).StudyInstanceUID)
    uids = [str(pydicom.dcmread(f, stop_before_pixels=True).StudyInstanceUID) for f in files]
    with storescp(tmp_path / "pacs") as pacs:
        config = split_node_config(
            tmp_path,
            broker,
            port,
            pacs,
            f"queue_lease_s = 5.0\nanalysis_lease_s = 10.0\nsweep_interval_s = 1.0\nmax_attempts = {ATTEMPTS}",
        )
        # Its instances arrive together: one study, one job.
        config.write_text(config.read_text().replace("completion_debounce_s = 0", "completion_debounce_s = 1.0"))
        upgrade(database_url)
        engine = make_engine(database_url)
        sessions = make_session_factory(engine)

        def states() -> dict[str, JobState]:
            with sessions() as s:
                return {
                    ("poison" if uid == poison_uid else uid): job.state
                    for uid in uids
                    for job in jobs.list_jobs(s, uid)
                }

        kills = 0
        try:
            with split_node(config, log) as node:
                wait_for_port(port)
                # The poison study first, so the others queue behind it. It has several images, so that its
                # analysis lasts long enough to be caught (and killed) every time.
                poison_files = [files[0], *poison_instances(rg1_dataset, poison_uid, tmp_path / "poison")]
                assert (
                    subprocess.run(
                        ["storescu", "-aec", "CXR_AI", "127.0.0.1", str(port), *map(str, [*poison_files, *files[1:]])],
                        capture_output=True,
                    ).returncode
                    == 0
                )
                deadline = time.monotonic() + 240
                killed_attempt = 0
                while time.monotonic() < deadline:
                    now = states()
                    with sessions() as s:
                        job = next(iter(jobs.list_jobs(s, poison_uid)), None)
                    # Each new attempt is killed: the sweeper may hand the job back and a worker start it again
                    # between two looks, so the attempt count, not the state alone, says which attempt runs.
                    if job is not None and job.state is JobState.ANALYZING and job.attempts > killed_attempt:
                        node.kill_gpu_worker()  # the "crash" this study causes, every time
                        kills += 1
                        killed_attempt = job.attempts
                    others = [state for uid, state in now.items() if uid != "poison"]
                    if now.get("poison") is JobState.DEAD_LETTER and others.count(JobState.DELIVERED) == len(files) - 1:
                        break
                    time.sleep(0.05)
                with sessions() as s:
                    (poison,) = jobs.list_jobs(s, poison_uid)
                final = states()
        finally:
            engine.dispose()
    assert poison.state is JobState.DEAD_LETTER and f"gave up after {ATTEMPTS} attempts" in (poison.reason or "")
    assert poison.attempts == ATTEMPTS and kills == ATTEMPTS
    assert [s for uid, s in final.items() if uid != "poison"] == [JobState.DELIVERED] * (len(files) - 1)
