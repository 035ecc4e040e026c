"""STAT overtakes: an urgent study sent behind 30 routine ones is delivered before most of them, on either broker."""

from __future__ import annotations

import copy
import time
from pathlib import Path

import pydicom
import pytest
from pydicom.uid import generate_uid
from sqlalchemy import select

from db.engine import make_engine, make_session_factory
from db.models import Job, JobState, Study
from tests.helpers.databases import redis_broker
from tests.helpers.node import cxr_serve
from tests.helpers.peers import storescp, storescu

pytestmark = pytest.mark.integration

ROUTINE = 30


def copies(rg1: Path, directory: Path, count: int) -> list[Path]:
    source = pydicom.dcmread(rg1)
    directory.mkdir(parents=True)
    paths = []
    for index in range(count):
        ds = copy.deepcopy(source)
        ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        path = directory / f"{index:02d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


@pytest.mark.parametrize("broker", ["embedded", "redis"])
def test_a_stat_study_overtakes_routine_work(tmp_path: Path, rg1: Path, broker: str) -> None:
    routine = copies(rg1, tmp_path / "routine", ROUTINE)
    (urgent,) = copies(rg1, tmp_path / "urgent", 1)
    urls = {"broker_url": redis_broker("stat_lane")} if broker == "redis" else {}
    with (
        storescp(tmp_path / "pacs") as pacs,
        cxr_serve(tmp_path / "node", pacs, scp_toml='stat_calling_aets = ["ED_CR"]', **urls) as node,
    ):
        assert storescu(routine[0].parent, node.port, "CXR_AI", "+sd").returncode == 0  # one association, 30 studies
        time.sleep(1.0)  # the routine studies are complete and queued before the urgent one arrives
        assert storescu(urgent, node.port, "CXR_AI", "-aet", "ED_CR").returncode == 0
        engine = make_engine(node.database_url)
        try:
            deadline = time.monotonic() + 240
            while True:
                with make_session_factory(engine)() as session:
                    rows = session.execute(
                        select(Study.study_instance_uid, Study.stat, Job.state, Job.finished_at).join(Job)
                    ).all()
                if len(rows) == ROUTINE + 1 and all(r.state is JobState.DELIVERED for r in rows):
                    break
                assert time.monotonic() < deadline, f"{sum(r.state is JobState.DELIVERED for r in rows)} delivered"
                time.sleep(0.5)
        finally:
            engine.dispose()
    order = [r.study_instance_uid for r in sorted(rows, key=lambda r: r.finished_at)]
    urgent_uid = str(pydicom.dcmread(urgent, stop_before_pixels=True).StudyInstanceUID)
    assert [r.stat for r in rows if r.study_instance_uid == urgent_uid] == [True]
    assert sum(r.stat for r in rows) == 1
    assert order.index(urgent_uid) < ROUTINE // 2, f"STAT delivered {order.index(urgent_uid) + 1}th of {len(order)}"
