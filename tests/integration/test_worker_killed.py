"""A worker killed with SIGKILL mid-analysis, three times, under load: every study is delivered, each object once.

The same flow on both stacks: the embedded default (kombu's SQLite broker, SQLite database) and production (Redis,
PostgreSQL).
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pydicom
import pytest

from db import jobs
from db.models import JobState
from tests.helpers.databases import postgres_database, redis_broker
from tests.helpers.flow import STUDIES, assert_each_object_once, copies, job_states, node_database
from tests.helpers.node import split_node, split_node_config
from tests.helpers.peers import free_port, storescp, wait_for_port

pytestmark = pytest.mark.integration

KILLS = 3


@contextmanager
def stack(name: str, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """(broker URL, database URL); an empty broker URL is the embedded SQLite broker in the data directory."""
    if name == "embedded":
        yield "", f"sqlite:///{tmp_path / 'var' / 'cxr.sqlite'}"
        return
    with postgres_database() as database_url:
        yield redis_broker("worker_killed"), database_url


@pytest.mark.parametrize("stack_name", ["embedded", "production"])
def test_sigkilled_worker_loses_and_duplicates_nothing(
    stack_name: str, rg1_dataset: pydicom.Dataset, tmp_path: Path
) -> None:
    port = free_port()
    receptions = tmp_path / "receptions.log"
    with (
        stack(stack_name, tmp_path) as (broker, database_url),
        storescp(tmp_path / "pacs", "PACS", None, "--exec-on-reception", f"echo #f >> {receptions}") as pacs,
        node_database(database_url) as sessions,
    ):
        config = split_node_config(
            tmp_path,
            broker,
            port,
            pacs,
            "queue_lease_s = 5.0\nanalysis_lease_s = 5.0\nsweep_interval_s = 1.0\nmax_attempts = 6",
            database_url,
        )
        with split_node(config, tmp_path / "node.log") as node:
            wait_for_port(port)
            files = copies(rg1_dataset, tmp_path / "studies")
            assert (
                subprocess.run(
                    ["storescu", "-aec", "CXR_AI", "127.0.0.1", str(port), *map(str, files)], capture_output=True
                ).returncode
                == 0
            )
            for _ in range(KILLS):
                deadline = time.monotonic() + 60
                while JobState.ANALYZING not in job_states(sessions) and time.monotonic() < deadline:
                    time.sleep(0.05)
                node.kill_gpu_worker()  # mid-analysis
            deadline = time.monotonic() + 240
            while job_states(sessions).count(JobState.DELIVERED) < STUDIES and time.monotonic() < deadline:
                time.sleep(0.5)
            time.sleep(3)  # any duplicate delivery would arrive now
            states = job_states(sessions)
            with sessions() as s:
                tries = [j.attempts for j in jobs.list_jobs(s)]
    assert states.count(JobState.DELIVERED) == STUDIES, states
    assert sum(1 for t in tries if t >= 2) >= 1, f"the kills interrupted analyses: attempts {tries}"
    assert_each_object_once(tmp_path / "pacs", receptions, STUDIES)
