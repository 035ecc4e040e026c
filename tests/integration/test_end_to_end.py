"""The whole loop on real parts: DCMTK storescu → ``cxr serve`` → DCMTK storescp, then checked with dciodvfy."""

from __future__ import annotations

import copy
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
import pytest

from db.models import JobState
from tests.helpers.databases import postgres_database, redis_broker, redis_contents
from tests.helpers.node import RunningNode, cxr_serve, processes_naming, stop, wait_for_files, wait_until_ready
from tests.helpers.peers import dciodvfy_errors, storescp, storescu

pytestmark = pytest.mark.integration

SR_CLASS = "1.2.840.10008.5.1.4.1.1.88.34"
GSPS_CLASS = "1.2.840.10008.5.1.4.1.1.11.1"
SC_CLASS = "1.2.840.10008.5.1.4.1.1.7"


@dataclass
class Delivered:
    node: RunningNode
    destination: Path
    objects: dict[str, pydicom.Dataset]
    files: list[Path]


def by_class(datasets: list[pydicom.Dataset]) -> dict[str, pydicom.Dataset]:
    classes = {str(ds.SOPClassUID): ds for ds in datasets}
    assert set(classes) == {SR_CLASS, SC_CLASS, GSPS_CLASS}, f"unexpected objects: {sorted(classes)}"
    return classes


def sr_findings(sr: pydicom.Dataset) -> list[tuple[str, tuple[float, ...]]]:
    """(finding type code, polyline) for every measurement group, in order."""
    findings = []
    for group in sr.ContentSequence[-1].ContentSequence:  # Imaging Measurements container
        items = group.get("ContentSequence", [])
        codes = [
            i.ConceptCodeSequence[0].CodeValue
            for i in items
            if i.ValueType == "CODE" and i.ConceptNameCodeSequence[0].CodeValue == "121071"
        ]
        coords = [tuple(float(v) for v in i.GraphicData) for i in items if i.ValueType == "SCOORD"]
        if coords:
            findings.append((codes[0] if codes else "", coords[0]))
    return findings


def run_once(workdir: Path, source: Path, **urls: str) -> Iterator[Delivered]:
    with storescp(workdir / "pacs") as pacs_port, cxr_serve(workdir / "node", pacs_port, **urls) as node:
        result = storescu(source, node.port, "CXR_AI", *(["-xv"] if "J2K" in source.name else []))
        assert result.returncode == 0, result.stderr
        datasets = wait_for_files(workdir / "pacs", 3, timeout_s=30)
        files = sorted((workdir / "pacs").iterdir())
        yield Delivered(node, workdir / "pacs", by_class(datasets), files)
    assert processes_naming(str(node.config)) == [], "a child of cxr serve outlived it"


@pytest.fixture(scope="module")
def rg1_run(tmp_path_factory: pytest.TempPathFactory, rg1: Path) -> Iterator[Delivered]:
    yield from run_once(tmp_path_factory.mktemp("rg1"), rg1)


def test_rg1_results_arrive_in_the_source_study(rg1_run: Delivered, rg1_dataset: pydicom.Dataset) -> None:
    objects = rg1_run.objects
    for ds in objects.values():
        assert ds.StudyInstanceUID == rg1_dataset.StudyInstanceUID
    assert (
        objects[SR_CLASS]
        .CurrentRequestedProcedureEvidenceSequence[0]
        .ReferencedSeriesSequence[0]
        .ReferencedSOPSequence[0]
        .ReferencedSOPInstanceUID
        == rg1_dataset.SOPInstanceUID
    )
    gsps_reference = objects[GSPS_CLASS].ReferencedSeriesSequence[0].ReferencedImageSequence[0]
    assert gsps_reference.ReferencedSOPInstanceUID == rg1_dataset.SOPInstanceUID
    assert len(sr_findings(objects[SR_CLASS])) >= 1
    (job,) = rg1_run.node.jobs(rg1_dataset.StudyInstanceUID)
    assert job.state is JobState.DELIVERED


def test_every_delivered_object_passes_dciodvfy(rg1_run: Delivered) -> None:
    for path in rg1_run.files:
        assert dciodvfy_errors(path) == [], path.name


def test_duplicate_send_is_acknowledged_without_a_second_job(rg1_run: Delivered, rg1: Path) -> None:
    assert storescu(rg1, rg1_run.node.port).returncode == 0
    time.sleep(2.0)  # longer than the debounce: a second job would have been created by now
    study = pydicom.dcmread(rg1, stop_before_pixels=True).StudyInstanceUID
    assert len(rg1_run.node.jobs(study)) == 1


def test_non_chest_study_is_accepted_and_recorded_not_eligible(rg1_run: Delivered, rg3: Path) -> None:
    assert storescu(rg3, rg1_run.node.port).returncode == 0
    study = pydicom.dcmread(rg3, stop_before_pixels=True).StudyInstanceUID
    deadline = time.monotonic() + 15
    while not rg1_run.node.jobs(study) and time.monotonic() < deadline:
        time.sleep(0.2)
    (job,) = rg1_run.node.jobs(study)
    assert job.state is JobState.NOT_ELIGIBLE and "EXTREMITY" in (job.reason or "")
    time.sleep(1.0)
    assert len(list(rg1_run.destination.iterdir())) == 3, "nothing is written into a non-chest study"


def test_jpeg2000_lossless_gives_the_same_findings(rg1_run: Delivered, rg1_j2kr: Path, tmp_path: Path) -> None:
    """Decoded in full, lossless JPEG 2000 is the same image: the same findings, to the coordinate."""
    for j2k in run_once(tmp_path, rg1_j2kr, extra_toml="[worker]\nreduced_decode = false\n"):
        assert sr_findings(j2k.objects[SR_CLASS]) == sr_findings(rg1_run.objects[SR_CLASS])


def _box(polyline: tuple[float, ...]) -> tuple[float, float, float, float]:
    xs, ys = polyline[0::2], polyline[1::2]
    return min(xs), min(ys), max(xs), max(ys)


def _iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    (ax0, ay0, ax1, ay1), (bx0, by0, bx1, by1) = _box(a), _box(b)
    inter = max(0.0, min(ax1, bx1) - max(ax0, bx0)) * max(0.0, min(ay1, by1) - max(ay0, by0))
    union = (ax1 - ax0) * (ay1 - ay0) + (bx1 - bx0) * (by1 - by0) - inter
    return inter / union if union else 0.0


def test_jpeg2000_decoded_at_the_detectors_resolution_gives_the_same_findings_within_tolerance(
    rg1_run: Delivered, rg1_j2kr: Path, tmp_path: Path
) -> None:
    """By default the worker decodes JPEG 2000 only to the resolution the detector looks at (``models.j2k``): the
    same findings, each region overlapping the full decode's by IoU ≥ 0.9 (tests/models/test_j2k.py states the rest
    of the tolerance), perhaps in another order where two scores were within a hair."""
    full = sr_findings(rg1_run.objects[SR_CLASS])
    for j2k in run_once(tmp_path, rg1_j2kr):
        reduced = sr_findings(j2k.objects[SR_CLASS])
        assert len(reduced) == len(full)
        for code, polyline in full:
            assert max(_iou(polyline, other) for c, other in reduced if c == code) >= 0.9


def test_images_are_analysed_while_their_study_waits_for_completion(rg1: Path, tmp_path: Path) -> None:
    """The SCP tells the analysis workers of each stored image (``dicom_node.stored_notices``); with a debounce longer
    than an analysis, the job finds its image analysed, on whichever of the two workers it runs (the entry is shared
    through the spool, ``worker.shared_findings``), and only encodes and sends."""
    # Every study waits the debounce (a sender sending each study over one association would have it complete at
    # the release, racing its early analysis).
    wait = "completion_learn_senders = false"
    with (
        storescp(tmp_path / "pacs") as pacs_port,
        cxr_serve(
            tmp_path / "node", pacs_port, debounce_s=3.0, scp_toml=wait, extra_toml="[worker]\nanalysis_processes = 2\n"
        ) as node,
    ):
        wait_until_ready(node)  # an image stored before the analysis worker is up is left to its job
        assert storescu(rg1, node.port).returncode == 0
        wait_for_files(tmp_path / "pacs", 3, timeout_s=60)
    log = node.log.read_text(errors="replace")
    assert "analysed early (images: 1)" in log and "1 of 1 images were analysed early" in log
    assert log.count("encoders warmed up in") == 2, "each analysis worker warmed its encoders before it took work"


def test_the_same_input_yields_the_same_result_uids(rg1_run: Delivered, rg1: Path, tmp_path: Path) -> None:
    for again in run_once(tmp_path, rg1):
        assert {k: v.SOPInstanceUID for k, v in again.objects.items()} == {
            k: v.SOPInstanceUID for k, v in rg1_run.objects.items()
        }
        sc_first, sc_again = rg1_run.objects[SC_CLASS], again.objects[SC_CLASS]
        assert np.array_equal(sc_first.pixel_array, sc_again.pixel_array)


MARKERS = {"PatientName": "PHIMARKER^NAME", "PatientID": "PHIMARKERID", "AccessionNumber": "PHIMARKERACC"}


def test_postgresql_and_redis_need_no_code_change_and_hold_no_phi(rg1_dataset: pydicom.Dataset, tmp_path: Path) -> None:
    """The production stack, fed a study with marker patient identifiers: results flow, and the markers appear in no
    log, no Redis key or value (task messages included) and no database row."""
    marked = copy.deepcopy(rg1_dataset)
    for keyword, value in MARKERS.items():
        setattr(marked, keyword, value)
    source = tmp_path / "marked.dcm"
    marked.save_as(source, enforce_file_format=True)
    broker = redis_broker()
    with postgres_database() as database_url:
        for delivered in run_once(tmp_path, source, database_url=database_url, broker_url=broker):
            assert len(delivered.objects) == 3
            assert delivered.objects[SR_CLASS].PatientID == "PHIMARKERID", "the results do carry the patient"
            (job,) = delivered.node.jobs()
            assert job.state is JobState.DELIVERED
            in_redis = redis_contents(broker)
            stop(delivered.node)
            log = delivered.node.log.read_bytes()
        plain_url = database_url.replace("postgresql+psycopg://", "postgresql://")
        dump = subprocess.run(["pg_dump", "--data-only", plain_url], capture_output=True, check=True).stdout
    assert b"_kombu.binding." in in_redis, "the broker's own database was the one searched"
    for marker in MARKERS.values():
        for where, text in (("log", log), ("Redis", in_redis), ("database", dump)):
            assert marker.encode() not in text and marker.split("^")[0].encode() not in text, f"{marker} in {where}"


def test_logs_carry_no_patient_identifiers(rg1_run: Delivered, rg1_dataset: pydicom.Dataset) -> None:
    log = rg1_run.node.log.read_text(errors="replace")
    assert "analyze_study" in log, "the log was captured"
    for keyword in ("PatientName", "PatientID", "ReferringPhysicianName", "AccessionNumber"):
        value = str(rg1_dataset.get(keyword, "") or "")
        if len(value) >= 4:
            assert value not in log, f"{keyword} appears in the node's log"
    assert str(rg1_dataset.SOPInstanceUID) not in log, "UIDs are logged as digests"
