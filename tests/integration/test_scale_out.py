"""Two analysis workers on two "hosts" share one Redis and one PostgreSQL.

Host A runs the SCP, a delivery worker, the sweeper and an analysis worker; host B runs an analysis worker only, from
its own working directory and configuration file, with its own node name. The data directory is the documented
shared path (an NFS mount at the same path on every host, docs/deploy.md): the spool the SCP writes and the result
objects the analysis workers write are read by the other processes by the absolute paths the database records.
Every study is delivered exactly once, and both hosts took analyses.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pydicom
import pytest

from db.engine import make_engine, make_session_factory
from db.heartbeats import online_workers
from db.jobs import job_events, list_jobs
from db.migrate import upgrade
from db.models import JobState, utcnow
from tests.helpers.databases import postgres_database, redis_broker
from tests.helpers.flow import STUDIES, assert_each_object_once, copies
from tests.helpers.node import split_node, split_node_config, start_cxr, stop_processes
from tests.helpers.peers import free_port, storescp, wait_for_port

pytestmark = pytest.mark.integration


def test_two_hosts_share_the_work_and_deliver_each_study_once(rg1_dataset: pydicom.Dataset, tmp_path: Path) -> None:
    broker = redis_broker("scale_out")
    port = free_port()
    receptions = tmp_path / "receptions.log"
    with (
        postgres_database() as database_url,
        storescp(tmp_path / "pacs", "PACS", None, "--exec-on-reception", f"echo #f >> {receptions}") as pacs,
    ):
        host_a = tmp_path / "host-a"
        host_a.mkdir()
        config_a = split_node_config(
            host_a, broker, port, pacs, 'node_name = "host-a"\nsweep_interval_s = 1.0', database_url
        )
        host_b = tmp_path / "host-b"
        host_b.mkdir()
        config_b = host_b / "cxr.toml"
        config_b.write_text(config_a.read_text().replace('node_name = "host-a"', 'node_name = "host-b"'))
        upgrade(database_url)
        engine = make_engine(database_url)
        sessions = make_session_factory(engine)
        second = start_cxr("worker", config_b, host_b / "worker.log", "--queues", "gpu")
        try:
            with split_node(config_a, host_a / "node.log"):
                wait_for_port(port)
                deadline = time.monotonic() + 60
                while time.monotonic() < deadline:
                    with sessions() as s:
                        online = {w.hostname for w in online_workers(s, utcnow().replace(year=2000))}
                    if {"gpu@host-a", "gpu@host-b"} <= {h.rsplit(":", 1)[0] for h in online}:
                        break
                    time.sleep(0.2)
                assert (
                    subprocess.run(
                        [
                            "storescu",
                            "-aec",
                            "CXR_AI",
                            "127.0.0.1",
                            str(port),
                            *map(str, copies(rg1_dataset, tmp_path / "studies")),
                        ],
                        capture_output=True,
                    ).returncode
                    == 0
                )
                deadline = time.monotonic() + 180
                while time.monotonic() < deadline:
                    with sessions() as s:
                        jobs = list_jobs(s)
                    if [j.state for j in jobs].count(JobState.DELIVERED) == STUDIES:
                        break
                    time.sleep(0.5)
                time.sleep(3)  # a duplicate delivery would arrive now
                with sessions() as s:
                    jobs = list_jobs(s)
                    analysed_on = [
                        detail or ""
                        for job in jobs
                        for state, detail in job_events(s, job.job_id)
                        if state is JobState.ANALYZING
                    ]
        finally:
            stop_processes([second])
            engine.dispose()
    assert [j.state for j in jobs].count(JobState.DELIVERED) == STUDIES
    hosts = {detail.split(" on ", 1)[1].rsplit(":", 1)[0] for detail in analysed_on if " on " in detail}
    assert hosts == {"host-a", "host-b"}, analysed_on
    assert_each_object_once(tmp_path / "pacs", receptions, STUDIES)
