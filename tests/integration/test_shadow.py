"""Shadow mode and site validation with ``cxr serve``: twenty studies are analysed, encoded and recorded and nothing
reaches the destination; ``cxr validate import`` takes the radiologists' truth for them, ``cxr validate report``
agrees with counts made here, ``cxr validate thresholds --apply`` writes the site's thresholds; switched to live, the
node sends the next study only, and its SR states the new thresholds; ``cxr release`` sends one chosen shadow study's
three objects, once. One study carries PHI markers, found nowhere the node or the validation wrote."""

from __future__ import annotations

import datetime as dt
import json
import time
import tomllib
from collections.abc import Callable
from pathlib import Path

import pydicom
import pytest
import tomlkit
from sqlalchemy import func, select

from db.engine import make_engine, make_session_factory
from db.models import Finding, Instance, Job, JobState, LabelScore, Study
from tests.helpers.cli import run_cli
from tests.helpers.encode_cases import content_items
from tests.helpers.flow import write_copies
from tests.helpers.node import cxr_serve
from tests.helpers.peers import free_port, received, storescp, storescu

pytestmark = pytest.mark.integration


def wait_until(condition: Callable[[], bool], timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.5)


MARKERS = ("PHIMARKER^SHADOW", "PHIMARKERSHID", "PHIMARKERSHACC")


def truth_for(database_url: str, out: Path) -> tuple[Path, dict[str, list[list[int]]]]:
    """A truth file for the analysed studies (Nodule positive on every other one, Mass negative but uncertain on two),
    and each label's confusion matrix counted here from what the node recorded."""
    engine = make_engine(database_url)
    with make_session_factory(engine)() as s:
        rows = s.execute(
            select(Study.study_instance_uid, LabelScore.label, LabelScore.positive)
            .join(Instance, Instance.id == LabelScore.instance_id)
            .join(Study, Study.id == Instance.study_id)
            .order_by(Study.id)
        ).all()
    engine.dispose()
    reported: dict[str, dict[str, bool]] = {}
    for uid, label, positive in rows:
        reported.setdefault(uid, {})[label] = positive
    lines, matrices = ["study_instance_uid,reader,Nodule,Mass"], {"Nodule": [[0, 0], [0, 0]], "Mass": [[0, 0], [0, 0]]}
    for i, (uid, found) in enumerate(reported.items()):
        truth = {"Nodule": "positive" if i % 2 else "negative", "Mass": "uncertain" if i in (3, 4) else "negative"}
        lines.append(f"{uid},r{i % 3},{truth['Nodule']},{truth['Mass']}")
        for label, value in truth.items():
            if value != "uncertain":
                matrices[label][int(value == "positive")][int(found[label])] += 1
    out.write_text("\n".join(lines) + "\n")
    return out, matrices


def validate(config: Path, database_url: str, tmp_path: Path) -> str:
    """Import, report and calibrate through the console script; returns everything the commands printed."""
    truth, matrices = truth_for(database_url, tmp_path / "truth.csv")
    imported = run_cli("validate", "import", str(truth), "--config", str(config), cwd=tmp_path)
    assert imported.returncode == 0 and "imported 40 readings of 20 studies" in imported.stdout, imported.stdout
    report = run_cli(
        "validate", "report", "--out", str(tmp_path / "report"), "--mode", "shadow", "--bootstrap", "200",
        "--config", str(config), cwd=tmp_path,
    )  # fmt: skip
    assert report.returncode == 0, report.stdout + report.stderr
    metrics = json.loads((tmp_path / "report" / "metrics.json").read_text())
    assert metrics["studies"] == {"analysed": 20, "with_truth": 20}
    for label, matrix in matrices.items():
        assert metrics["labels"][label]["confusion_matrix"] == matrix, label
        for name in ("sensitivity", "specificity", "ppv", "npv", "auroc"):
            value = metrics["labels"][label][name]
            assert value["estimate"] is None or value["ci_low"] <= value["estimate"] <= value["ci_high"]
    before = config.read_text()
    calibrated = run_cli(
        "validate", "thresholds", "--target-sensitivity", "0.9", "--label", "Nodule", "--apply", "--config",
        str(config), cwd=tmp_path,
    )  # fmt: skip
    assert calibrated.returncode == 0, calibrated.stdout + calibrated.stderr
    assert "[model]" in calibrated.stdout and "thresholds_set" in calibrated.stdout
    (backup,) = tmp_path.glob("node/cxr.toml.*.bak")
    assert backup.read_text() == before, "the old file is kept"
    return imported.stdout + report.stdout + calibrated.stdout + calibrated.stderr


def algorithm_parameters(sr: pydicom.Dataset) -> list[str]:
    return [
        str(i.TextValue)
        for i in content_items(sr.ContentSequence)
        if i.ConceptNameCodeSequence[0].CodeValue == "111002"
    ]


def test_shadow_then_validation_then_live_then_release(rg1_dataset: pydicom.Dataset, tmp_path: Path) -> None:
    studies = tmp_path / "studies"
    copies = write_copies(rg1_dataset, studies, 21, "shadow")
    marked = pydicom.dcmread(copies[0])
    marked.PatientName, marked.PatientID, marked.AccessionNumber = MARKERS
    marked.save_as(copies[0], enforce_file_format=True)
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
            config, database_url = node.config, node.database_url
        written = validate(config, database_url, tmp_path)
        written += node.log.read_text(errors="replace")
        applied = tomllib.loads(config.read_text())["model"]
        assert set(applied["thresholds"]) == {"Nodule"} and applied["thresholds_set"] == dt.datetime.now(dt.UTC).date()
        model_toml = tomlkit.dumps({"model": applied})  # the applied table, into the live node's configuration
        with cxr_serve(tmp_path / "node", pacs, port=port, extra_toml=model_toml) as live:
            assert storescu(later, live.port, "CXR_AI", "+sd").returncode == 0
            wait_until(lambda: len(received(tmp_path / "pacs")) == 3)
            (newest,) = {str(ds.StudyInstanceUID) for ds in received(tmp_path / "pacs")}
            assert newest == str(pydicom.dcmread(later / copies[-1].name).StudyInstanceUID), "the 21st study only"
            (sr,) = [ds for ds in received(tmp_path / "pacs") if ds.Modality == "SR"]
            stated = algorithm_parameters(sr)
            assert f"site thresholds=Nodule={applied['thresholds']['Nodule']:g}" in stated, stated
            assert f"site thresholds set={applied['thresholds_set'].isoformat()}" in stated
            first_job = live.jobs()[0].job_id
            released = run_cli("release", str(first_job), "--config", str(config), cwd=tmp_path)
            assert released.returncode == 0 and "3 deliveries" in released.stdout, released.stdout + released.stderr
            wait_until(lambda: len(received(tmp_path / "pacs")) == 6)
            again = run_cli("release", str(first_job), "--config", str(config), cwd=tmp_path)
            assert again.returncode == 1 and "not a shadow result waiting for release" in again.stdout
            time.sleep(2.0)
            assert len(received(tmp_path / "pacs")) == 6, "released once"
            assert live.jobs()[0].state is JobState.DELIVERED, "the released job waited for its deliveries"
            written += live.log.read_text(errors="replace")
    stored = Path(database_url.removeprefix("sqlite:///")).read_bytes()
    outputs = "".join(p.read_text(errors="replace") for p in (tmp_path / "report").iterdir() if p.suffix != ".png")
    for marker in MARKERS:
        needle = marker.split("^")[0]
        for where, text in (("logs and output", written), ("report", outputs)):
            assert needle not in text, f"{marker} in the {where}"
        assert needle.encode() not in stored, f"{marker} in the database"
