"""Shadow mode with ``cxr serve``: twenty studies are analysed, encoded and recorded and nothing reaches the
destination; switched to live, the node sends the next study only; ``cxr release`` sends one chosen shadow study's
three objects, once."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pydicom
import pytest
from sqlalchemy import func, select

from db.engine import make_engine, make_session_factory
from db.models import Finding, Job, JobState
from tests.helpers.cli import run_cli
from tests.helpers.flow import write_copies
from tests.helpers.node import cxr_serve
from tests.helpers.peers import free_port, received, storescp, storescu

pytestmark = pytest.mark.integration


def wait_until(condition: Callable[[], bool], timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.5)


def test_shadow_then_live_then_release(rg1_dataset: pydicom.Dataset, tmp_path: Path) -> None:
    studies = tmp_path / "studies"
    copies = write_copies(rg1_dataset, studies, 21, "shadow")
    later = tmp_path / "later"
    later.mkdir()
    copies[-1].rename(later / copies[-1].name)
    port = free_port()
    with storescp(tmp_path / "pacs") as pacs:
        with cxr_serve(tmp_path / "node", pacs, port=port, extra_toml='[results]\nmode = "shadow"\n') as node:
            assert storescu(studies, node.port, "CXR_AI", "+sd").returncode == 0
            wait_until(lambda: [j.state for j in node.jobs()] == [JobState.COMPLETED] * 20)
            engine = make_engine(node.database_url)
            with make_session_factory(engine)() as s:
                shadow = s.scalar(select(func.count()).select_from(Job).where(Job.shadow.is_(True)))
                with_findings = s.scalar(select(func.count(func.distinct(Finding.job_id))))
            engine.dispose()
            assert (shadow, with_findings) == (20, 20), "every study analysed and recorded, with its findings"
            time.sleep(1.0)
            assert received(tmp_path / "pacs") == [], "nothing sent in shadow mode"
            config = node.config
        with cxr_serve(tmp_path / "node", pacs, port=port) as live:
            assert storescu(later, live.port, "CXR_AI", "+sd").returncode == 0
            wait_until(lambda: len(received(tmp_path / "pacs")) == 3)
            (newest,) = {str(ds.StudyInstanceUID) for ds in received(tmp_path / "pacs")}
            assert newest == str(pydicom.dcmread(later / copies[-1].name).StudyInstanceUID), "the 21st study only"
            first_job = live.jobs()[0].job_id
            released = run_cli("release", str(first_job), "--config", str(config), cwd=tmp_path)
            assert released.returncode == 0 and "3 deliveries" in released.stdout, released.stdout + released.stderr
            wait_until(lambda: len(received(tmp_path / "pacs")) == 6)
            again = run_cli("release", str(first_job), "--config", str(config), cwd=tmp_path)
            assert again.returncode == 1 and "not a shadow result waiting for release" in again.stdout
            time.sleep(2.0)
            assert len(received(tmp_path / "pacs")) == 6, "released once"
            assert live.jobs()[0].state is JobState.DELIVERED, "the released job waited for its deliveries"
