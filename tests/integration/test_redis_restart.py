"""Redis killed and restarted from its append-only file while 20 studies are in flight: none is lost, none is sent
twice. Messages Redis kept are consumed after the restart; work whose message was lost with the connection (an
analysis running, an enqueue that failed while Redis was down) is re-sent by the sweeper when its lease expires."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pydicom
import pytest

from db.models import JobState
from tests.helpers.flow import STUDIES, assert_each_object_once, copies, job_states, node_database
from tests.helpers.node import split_node, split_node_config
from tests.helpers.peers import free_port, storescp, wait_for_port
from tests.helpers.redis_server import redis_server

pytestmark = pytest.mark.integration

DOWN_S = 3.0


def test_no_study_is_lost_or_duplicated_across_a_redis_restart(rg1_dataset: pydicom.Dataset, tmp_path: Path) -> None:
    port = free_port()
    receptions = tmp_path / "receptions.log"
    with (
        redis_server(tmp_path / "redis") as redis,
        storescp(tmp_path / "pacs", "PACS", None, "--exec-on-reception", f"echo #f >> {receptions}") as pacs,
        node_database(f"sqlite:///{tmp_path / 'var' / 'cxr.sqlite'}") as sessions,
    ):
        config = split_node_config(
            tmp_path,
            redis.url,
            port,
            pacs,
            "queue_lease_s = 5.0\nanalysis_lease_s = 5.0\nsweep_interval_s = 1.0\nmax_attempts = 6",
        )
        with split_node(config, tmp_path / "node.log"):
            wait_for_port(port)
            sender = subprocess.Popen(
                [
                    "storescu",
                    "-aec",
                    "CXR_AI",
                    "127.0.0.1",
                    str(port),
                    *map(str, copies(rg1_dataset, tmp_path / "studies")),
                ]
            )
            deadline = time.monotonic() + 60
            while job_states(sessions).count(JobState.DELIVERED) < 2 and time.monotonic() < deadline:
                time.sleep(0.05)
            in_flight = STUDIES - job_states(sessions).count(JobState.DELIVERED)
            redis.restart(DOWN_S)  # under load: most studies not yet delivered
            assert sender.wait(timeout=120) == 0
            deadline = time.monotonic() + 240
            while job_states(sessions).count(JobState.DELIVERED) < STUDIES and time.monotonic() < deadline:
                time.sleep(0.5)
            time.sleep(3)  # a duplicate delivery would arrive now
            states = job_states(sessions)
    assert in_flight >= STUDIES // 2, f"the restart came under load: {in_flight} studies in flight"
    assert states.count(JobState.DELIVERED) == STUDIES, states
    assert_each_object_once(tmp_path / "pacs", receptions, STUDIES)
