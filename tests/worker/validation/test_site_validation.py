"""worker.validation (truth import, agreement report, calibration, drift watch) on recorded scores, against counts
made here; on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import json
import tomllib
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import func, select

from config.settings import DriftSettings, Settings
from db.engine import SessionFactory
from db.models import TruthLabel, utcnow
from models.baseline import BaselineDetector
from tests.helpers.validation import Seeded, seed_study
from worker.validation.agreement_report import write_report
from worker.validation.calibration import apply_thresholds, choose_thresholds
from worker.validation.drift import Verdict, drift_watch, thresholds_warning
from worker.validation.truth_file import TruthFileError
from worker.validation.truth_import import import_truth

LABELS = ("Nodule", "Mass")
EQUIPMENT = (("Acme", "X1"), ("Beta", "Y2"))


def seed_cohort(sessions: SessionFactory, n: int = 60, seed: int = 3, **kwargs: object) -> list[Seeded]:
    """Studies on two devices and two views; each label's truth follows its score, with a few uncertain."""
    rng = np.random.default_rng(seed)
    seeded = []
    with sessions.begin() as session:
        for i in range(n):
            truth = {label: int(rng.random() < 0.4) for label in LABELS}
            scores = {label: float(np.clip(0.3 * truth[label] + 0.7 * rng.random(), 0, 1)) for label in LABELS}
            study = seed_study(
                session,
                f"{kwargs.get('tag', 'c')}-{seed}-{i}",
                scores,
                equipment=EQUIPMENT[i % 2],
                view=("PA", "AP")[(i // 2) % 2],
                **{k: v for k, v in kwargs.items() if k != "tag"},  # type: ignore[arg-type]
            )
            study.truth = {label: ("positive" if truth[label] else "negative") for label in LABELS}
            if i % 10 == 9:
                study.truth["Mass"] = "uncertain"
            seeded.append(study)
    return seeded


def truth_csv(path: Path, seeded: list[Seeded], extra: str = "") -> Path:
    lines = ["study_instance_uid,reader," + ",".join(LABELS)]
    lines += [f"{s.study_uid},r1," + ",".join(s.truth[label] for label in LABELS) for s in seeded]
    path.write_text("\n".join(lines) + "\n" + extra)
    return path


def counts(seeded: list[Seeded], label: str, keep: object = None) -> list[list[int]]:
    """[[TN, FP], [FN, TP]], made here from the seeded truth and what was reported."""
    matrix = [[0, 0], [0, 0]]
    for s in seeded:
        if keep is not None and not keep(s):  # type: ignore[operator]
            continue
        if s.truth[label] == "uncertain":
            continue
        matrix[int(s.truth[label] == "positive")][int(s.positive[label])] += 1
    return matrix


def test_import_is_all_or_nothing_and_reports_what_it_cannot_use(
    session_factory: SessionFactory, tmp_path: Path
) -> None:
    seeded = seed_cohort(session_factory, n=4)
    unknown_study = "1.2.826.0.1.3680043.10.99.1"
    summary = import_truth(session_factory, truth_csv(tmp_path / "t.csv", seeded, f"{unknown_study},r1,positive,\n"))
    assert summary.readings == 9 and summary.studies == 5
    assert summary.unknown_study_lines == (6,), "the study the node never received is reported by its line"
    assert any("not received" in line and "lines 6" in line for line in summary.lines())

    bad = tmp_path / "bad.csv"
    flip = {"positive": "negative", "negative": "positive"}
    bad.write_text(  # lines 2 and 3 would change two readings; line 4 is wrong
        f"study_instance_uid,label,value\n{seeded[0].study_uid},Nodule,{flip[seeded[0].truth['Nodule']]}\n"
        f"{seeded[1].study_uid},Nodule,{flip[seeded[1].truth['Nodule']]}\n{seeded[2].study_uid},Pneumothorx,positive\n"
    )
    with pytest.raises(TruthFileError, match=r"^line 4: unknown label 'Pneumothorx'"):
        import_truth(session_factory, bad)
    with session_factory() as session:
        nodules = dict(
            session.execute(
                select(TruthLabel.study_instance_uid, TruthLabel.value).where(TruthLabel.label == "Nodule")
            ).all()
        )
        total = session.scalar(select(func.count()).select_from(TruthLabel))
    assert total == 9, "nothing of the refused file was stored"
    assert [nodules[s.study_uid] for s in seeded[:2]] == [s.truth["Nodule"] for s in seeded[:2]], "not even line 2"

    again = import_truth(session_factory, truth_csv(tmp_path / "t.csv", seeded))
    with session_factory() as session:
        assert session.scalar(select(func.count()).select_from(TruthLabel)) == 9, "a reading imported again replaces"
    assert again.unscored_labels == ()
    other = tmp_path / "other.csv"
    other.write_text(f"study_instance_uid,Pneumothorax\n{seeded[0].study_uid},negative\n")
    assert import_truth(session_factory, other).unscored_labels == ("Pneumothorax",)


def test_the_report_equals_counts_made_independently(session_factory: SessionFactory, tmp_path: Path) -> None:
    seeded = seed_cohort(session_factory)
    import_truth(session_factory, truth_csv(tmp_path / "t.csv", seeded))
    out = tmp_path / "report"
    metrics = write_report(session_factory, out, resamples=300)
    assert metrics["studies"] == {"analysed": 60, "with_truth": 60}
    for label in LABELS:
        assert metrics["labels"][label]["confusion_matrix"] == counts(seeded, label), label
    assert metrics["labels"]["Mass"]["left_out"] == 6, "uncertain readings are left out and counted"
    by_device = metrics["breakdowns"]["equipment"]
    for make, model in EQUIPMENT:
        name = f"{make} {model}"
        mine = counts(seeded, "Nodule", lambda s, name=name: by_name(seeded, s) == name)
        assert by_device[name]["Nodule"]["confusion_matrix"] == mine
    assert set(metrics["breakdowns"]["view"]) == {"AP", "PA"}
    assert set(metrics["breakdowns"]["positive labels"]) <= {"0", "1", "2"}
    for row in [*metrics["labels"].values(), *by_device["Acme X1"].values()]:
        for name in ("sensitivity", "specificity", "ppv", "npv", "auroc"):
            value = row[name]
            if value["estimate"] is not None:
                assert value["ci_low"] <= value["estimate"] <= value["ci_high"], name
    assert {"roc_nodule.png", "pr_nodule.png", "roc_any-abnormality.png"} <= {p.name for p in out.iterdir()}
    written = (out / "report.md").read_text() + (out / "metrics.json").read_text()
    assert "any abnormality" in written and "## By equipment" in written
    assert not any(s.study_uid in written for s in seeded), "no UID in the outputs"
    assert json.loads((out / "metrics.json").read_text())["labels"]["Nodule"]["studies"] == 60


def by_name(seeded: list[Seeded], study: Seeded) -> str:
    make, model = EQUIPMENT[seeded.index(study) % 2]
    return f"{make} {model}"


def test_thresholds_reach_the_target_and_apply_keeps_the_rest(session_factory: SessionFactory, tmp_path: Path) -> None:
    seeded = seed_cohort(session_factory, n=80, seed=5)
    import_truth(session_factory, truth_csv(tmp_path / "t.csv", seeded))
    detector = BaselineDetector()
    _, chosen = choose_thresholds(session_factory, detector, 0.9, resamples=300)
    assert {c.label for c in chosen} == set(LABELS)
    for c in chosen:
        known = [s for s in seeded if s.truth[c.label] != "uncertain"]
        positives = [s for s in known if s.truth[c.label] == "positive"]
        reached = sum(s.scores[c.label] >= c.score for s in positives) / len(positives)
        assert reached >= 0.9 and c.expected["sensitivity"]["estimate"] == pytest.approx(reached)
        assert c.setting == c.score, "the baseline's threshold is on the scores we record"
    config = tmp_path / "cxr.toml"
    config.write_text('# the site\'s settings\ndetector = "baseline"\n\n[model]\nthresholds = { Mass = 0.7 }\n')
    backup = apply_thresholds(config, chosen[:1], detector.provenance.model_id, dt.date(2026, 12, 3))
    assert (
        backup.read_text() == '# the site\'s settings\ndetector = "baseline"\n\n[model]\nthresholds = { Mass = 0.7 }\n'
    )
    text = config.read_text()
    assert text.startswith("# the site's settings"), "comments and other settings stay"
    model = tomllib.loads(text)["model"]
    assert model["thresholds"] == {"Mass": 0.7, chosen[0].label: round(chosen[0].setting, 6)} | (
        {"Mass": round(chosen[0].setting, 6)} if chosen[0].label == "Mass" else {}
    )
    settings = Settings.load(config)
    assert settings.model.thresholds_set == dt.date(2026, 12, 3)
    assert settings.model.thresholds_for == detector.provenance.model_id


def test_drift_is_flagged_for_the_shifted_device_only(session_factory: SessionFactory, tmp_path: Path) -> None:
    validation = seed_cohort(session_factory, n=60, seed=11, finished_at=utcnow() - dt.timedelta(days=20))
    import_truth(session_factory, truth_csv(tmp_path / "t.csv", validation))
    with session_factory.begin() as session:  # this week: the same films again, one device's scores shifted
        for i, earlier in enumerate(validation):
            equipment = EQUIPMENT[i % 2]
            shift = 0.3 if equipment == ("Beta", "Y2") else 0.0
            scores = {label: min(1.0, score + shift) for label, score in earlier.scores.items()}
            seed_study(session, f"recent-{i}", scores, equipment=equipment, finished_at=utcnow() - dt.timedelta(days=2))
    settings = DriftSettings(min_images=20)
    with session_factory() as session:
        watch = drift_watch(session, settings)
    assert watch.validation_period == "the studies with the site's truth"
    assert {(row.label, row.equipment) for row in watch.drifted} == {("Nodule", "Beta Y2"), ("Mass", "Beta Y2")}
    steady = [row for row in watch.rows if row.equipment == "Acme X1"]
    assert steady and all(row.verdict is Verdict.STEADY for row in steady)
    with session_factory() as session:
        strict = drift_watch(session, DriftSettings(min_images=1000))
    assert all(row.verdict is Verdict.TOO_FEW for row in strict.rows), "too few images: no verdict"


def test_a_new_model_version_starts_a_new_period(session_factory: SessionFactory, tmp_path: Path) -> None:
    old = seed_cohort(session_factory, n=40, seed=21, finished_at=utcnow() - dt.timedelta(days=30))
    import_truth(session_factory, truth_csv(tmp_path / "t.csv", old))
    seed_cohort(session_factory, n=40, seed=22, tag="new", version="0.2.0", finished_at=utcnow() - dt.timedelta(days=1))
    with session_factory() as session:
        watch = drift_watch(session, DriftSettings(min_images=10))
    assert watch.model is not None and watch.model.version == "0.2.0"
    assert watch.validation_period == "the model's first 28 days", "no truth for 0.2.0: its own first days"
    assert sum(row.validation.images for row in watch.rows if row.validation) == 80, "only 0.2.0's images"
    out = tmp_path / "report"
    with pytest.raises(ValueError, match=r"none of the 40 studies analysed by baseline 0\.2\.0"):
        write_report(session_factory, out, resamples=100)
    assert thresholds_warning("baseline:0.1.0:-", True, "baseline:0.2.0:-") == (
        "the site's thresholds were set for baseline:0.1.0:-; the running model is baseline:0.2.0:-: recalibrate"
    )
    assert thresholds_warning("baseline:0.2.0:-", True, "baseline:0.2.0:-") is None
