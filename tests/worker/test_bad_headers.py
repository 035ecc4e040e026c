"""worker.analyze, worker.encode.trusted and models.imaging under bad header values: every eligible chest study ends in
a final state with an SR at the destination (its result, or an SR saying analysis was not performed and why), however
one header value the pipeline reads is broken. Studies go in through dicom_node.ingest, as a C-STORE does; the
destination is a real DCMTK storescp.

CI runs the ``ci`` profile (60 fixed examples). A deeper search: ``HYPOTHESIS_PROFILE=deep .venv/bin/python -m pytest
tests/worker/test_bad_headers.py --timeout 3600`` (600 random examples, about five minutes)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pydicom
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydicom.dataset import Dataset

from config.settings import Settings
from db import jobs, results
from db.engine import SessionFactory, make_engine, make_session_factory
from db.lifecycle import TERMINAL_JOB_STATES
from db.migrate import upgrade
from db.models import JobState, ResultKind
from dicom_node.ingest import Arrival, NodeContext, ingest
from tests.helpers.encode_cases import content_items, derived_uid
from tests.helpers.mutations import READ, REPRODUCERS, mutate
from tests.helpers.peers import dciodvfy_errors, pixelmed_sr_errors, storescp
from tests.helpers.pipeline import context_for, with_pacs
from worker.analyze import analyze_job
from worker.deliver import deliver_result

# The five reproducers of the fault campaign (issue: hardened under hostile input), each applied to RG1.


@dataclass
class Site:
    settings: Settings
    sessions: SessionFactory
    pacs: Path
    node: NodeContext
    counter: Iterator[int]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    workdir = tmp_path_factory.mktemp("bad-headers")
    database_url = f"sqlite:///{workdir / 'cxr.sqlite'}"
    upgrade(database_url)
    sessions = make_session_factory(make_engine(database_url))
    with storescp(workdir / "pacs") as port:
        settings = with_pacs(workdir, port, worker={"delivery_max_retries": 0})
        node = NodeContext.for_uploads(settings, sessions, lambda job_id: None)
        yield Site(settings, sessions, workdir / "pacs", node, itertools.count())


@dataclass(frozen=True)
class Outcome:
    status: int
    state: JobState | None = None
    sr_paths: tuple[Path, ...] = ()
    reason: str | None = None


def run(site: Site, ds: Dataset) -> Outcome:
    """Ingest one study as the SCP would, analyse and deliver it as the workers would; where did it end?"""
    n = next(site.counter)
    ds.StudyInstanceUID = derived_uid("bad-header-study", str(n))
    ds.SeriesInstanceUID = derived_uid("bad-header-series", str(n))
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = derived_uid("bad-header-sop", str(n))
    incoming = site.settings.spool_dir / ".incoming" / f"{n}.dcm"
    incoming.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(incoming, enforce_file_format=True)
    arrival = Arrival(
        str(ds.SOPClassUID), str(ds.SOPInstanceUID), ds.file_meta.TransferSyntaxUID, "PACS", whole_study=True
    )
    ingested = ingest(incoming, arrival, site.node)
    status = int(ingested.status.Status) if isinstance(ingested.status, Dataset) else int(ingested.status)
    if status != 0:
        return Outcome(status)
    with site.sessions() as s:
        (job,) = jobs.list_jobs(s, str(ds.StudyInstanceUID))
    context = context_for(site.settings, site.sessions)
    if job.state is JobState.QUEUED:
        for delivery_id in analyze_job(context, job.job_id).delivery_ids:
            deliver_result(context, delivery_id)
    with site.sessions() as s:
        summary = jobs.job_summary(s, job.job_id)
        srs = [r.sop_instance_uid for r in results.job_results(s, job.job_id) if r.kind is ResultKind.SR]
    arrived = tuple(p for p in site.pacs.iterdir() if any(uid in p.name for uid in srs))
    return Outcome(status, summary.state, arrived, summary.reason)


def assert_ends_with_an_sr_unless_not_a_chest_study(outcome: Outcome) -> None:
    if outcome.status != 0:
        assert outcome.status in (0xA900, 0xC000, 0xC210), f"refused with 0x{outcome.status:04X}"
        return
    assert outcome.state in TERMINAL_JOB_STATES, outcome
    if outcome.state is JobState.NOT_ELIGIBLE and not outcome.sr_paths:
        assert outcome.reason, "a study the rules leave alone says why"
        return
    assert len(outcome.sr_paths) == 1, outcome


@pytest.mark.parametrize("keyword", list(REPRODUCERS))
def test_each_reproducer_ends_with_a_valid_not_performed_sr(site: Site, rg1_dataset: Dataset, keyword: str) -> None:
    outcome = run(site, mutate(rg1_dataset, keyword, REPRODUCERS[keyword]))
    assert outcome.status == 0 and outcome.state is JobState.FAILED, outcome
    (path,) = outcome.sr_paths
    sr = pydicom.dcmread(path)
    (text,) = [str(i.TextValue) for i in content_items(sr.ContentSequence) if "not performed" in i.get("TextValue", "")]
    assert text.startswith("AI analysis not performed: ") and outcome.reason and outcome.reason in text, text
    assert REPRODUCERS[keyword].decode().strip() not in text, "the bad value itself is never quoted"
    assert dciodvfy_errors(path) == [] and pixelmed_sr_errors(path) == []


@given(
    keyword=st.sampled_from(READ),
    value=st.one_of(
        st.none(),
        st.binary(max_size=24),
        st.sampled_from([b"", b"-5", b"0", b"1e309", b"NaN", b"abcd", b"GARBAGE", b"\\\\\\", b"\xff\xfe", b"99999999"]),
    ),
)
def test_one_bad_header_value_never_leaves_a_chest_study_without_an_sr(
    site: Site, rg1_dataset: Dataset, keyword: str, value: bytes | None
) -> None:
    assert_ends_with_an_sr_unless_not_a_chest_study(run(site, mutate(rg1_dataset, keyword, value)))
