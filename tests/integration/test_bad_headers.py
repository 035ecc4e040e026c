"""The five bad-header reproducers through ``cxr serve``: each study, sent by DCMTK storescu, gets an SR saying analysis
was not performed at the destination within a minute, and its job ends FAILED (a final state), not stuck ANALYZING."""

from __future__ import annotations

import time
from pathlib import Path

import pydicom
import pytest

from db.models import JobState
from tests.helpers.encode_cases import content_items, derived_uid
from tests.helpers.mutations import REPRODUCERS, mutate
from tests.helpers.node import cxr_serve, wait_for_files
from tests.helpers.peers import storescp, storescu

pytestmark = pytest.mark.integration


def test_each_reproducer_gets_a_not_performed_sr_within_a_minute(tmp_path: Path, rg1_dataset: pydicom.Dataset) -> None:
    sources = []
    for index, (keyword, value) in enumerate(REPRODUCERS.items()):
        ds = mutate(rg1_dataset, keyword, value)
        ds.StudyInstanceUID = derived_uid("reproducer-study", keyword)
        ds.SeriesInstanceUID = derived_uid("reproducer-series", keyword)
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = derived_uid("reproducer-sop", keyword)
        sources.append(tmp_path / f"{index}-{keyword}.dcm")
        ds.save_as(sources[-1], enforce_file_format=True)
    with storescp(tmp_path / "pacs") as pacs_port, cxr_serve(tmp_path / "node", pacs_port) as node:
        started = time.monotonic()
        for source in sources:
            assert storescu(source, node.port).returncode == 0
        received = wait_for_files(tmp_path / "pacs", len(sources), timeout_s=60)
        elapsed = time.monotonic() - started
        jobs = node.jobs()
    assert elapsed < 60
    assert {str(ds.StudyInstanceUID) for ds in received} == {derived_uid("reproducer-study", k) for k in REPRODUCERS}
    for sr in received:
        assert sr.Modality == "SR"
        texts = [str(i.TextValue) for i in content_items(sr.ContentSequence) if "TextValue" in i]
        assert any(t.startswith("AI analysis not performed: ") for t in texts), texts
    assert [j.state for j in jobs] == [JobState.FAILED] * len(sources)
