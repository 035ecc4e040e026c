"""``cxr validate thresholds``: per-label operating thresholds chosen on the site's own truth to reach a target
sensitivity, their expected specificity and PPV (with intervals), the TOML for ``model.thresholds``, and ``--apply``.

Thresholds are chosen on the scores we record (the probability each finding reports). ``model.thresholds`` takes a
detector's own setting; for torchxrayvision that is its raw operating point, so the detector converts
(``threshold_setting``); for the others the two are the same number.
"""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import tomlkit

from db.engine import SessionFactory
from db.enums import ResultMode
from db.validation import ModelIdentity, analysed_studies, consensus_truth, latest_model
from models.evaluation.agreement import agreement, threshold_for_sensitivity
from models.protocol import Detector
from worker.validation.agreement_report import NothingToReportError, Reading, column


@dataclass(frozen=True)
class ChosenThreshold:
    label: str
    score: float
    """The recorded score at or above which the label is reported."""
    setting: float
    """The value for ``model.thresholds`` (the detector's own scale)."""
    studies: int
    expected: dict[str, Any]
    """Sensitivity, specificity and PPV at this threshold on the site's studies, with intervals."""


def setting_for(detector: Detector, label: str, score: float) -> float:
    convert = getattr(detector, "threshold_setting", None)
    return float(convert(label, score)) if callable(convert) else score


def choose_thresholds(
    sessions: SessionFactory,
    detector: Detector,
    target: float,
    labels: Sequence[str] = (),
    mode: ResultMode = ResultMode.ALL,
    resamples: int = 1000,
    seed: int = 0,
) -> tuple[ModelIdentity, list[ChosenThreshold]]:
    with sessions() as session:
        model = latest_model(session)
        if model is None:
            raise NothingToReportError("no analysis has recorded scores yet")
        studies = analysed_studies(session, model, mode)
        truth = consensus_truth(session, [s.study_instance_uid for s in studies])
    readings = [Reading(s, truth[s.study_instance_uid]) for s in studies if s.study_instance_uid in truth]
    scored = sorted({label for s in studies for label in s.scores})
    unknown = sorted(set(labels) - set(scored))
    if unknown:
        raise NothingToReportError(f"no recorded scores for {', '.join(unknown)}; scored: {', '.join(scored)}")
    chosen = []
    for label in labels or scored:
        col = column(readings, scored, label)
        score = threshold_for_sensitivity(col.truth, col.scores, target) if len(col.truth) else None
        if score is None:
            continue  # no truly positive study: nothing to calibrate on
        predicted = (col.scores >= score).astype(np.int64)
        measured = agreement(col.truth, predicted, col.scores, resamples, seed)
        expected = {key: measured[key] for key in ("sensitivity", "specificity", "ppv")}
        chosen.append(ChosenThreshold(label, score, setting_for(detector, label, score), len(col.truth), expected))
    if not chosen:
        raise NothingToReportError("no label has a truly positive study with truth; run: cxr validate import FILE.csv")
    return model, chosen


def thresholds_toml(chosen: Sequence[ChosenThreshold], model_id: str, today: dt.date) -> str:
    table = tomlkit.inline_table()
    for c in chosen:
        table[c.label] = round(c.setting, 6)
    document = tomlkit.document()
    section = tomlkit.table()
    section["thresholds"] = table
    section["thresholds_set"] = today
    section["thresholds_for"] = model_id
    document["model"] = section
    return tomlkit.dumps(document)


def apply_thresholds(config: Path, chosen: Sequence[ChosenThreshold], model_id: str, today: dt.date) -> Path:
    """Write the thresholds into ``config`` (other settings, labels and comments kept), after copying the old file
    beside it. Returns the copy's path."""
    text = config.read_text(encoding="utf-8") if config.exists() else ""
    document = tomlkit.parse(text)
    model = document.get("model")
    if model is None:
        model = tomlkit.table()
        document["model"] = model
    thresholds = tomlkit.inline_table()
    thresholds.update({str(k): float(v) for k, v in dict(model.get("thresholds", {})).items()})
    for c in chosen:
        thresholds[c.label] = round(c.setting, 6)
    model["thresholds"] = thresholds
    model["thresholds_set"] = today
    model["thresholds_for"] = model_id
    backup = config.with_name(f"{config.name}.{dt.datetime.now(dt.UTC).strftime('%Y%m%dT%H%M%SZ')}.bak")
    if config.exists():
        shutil.copy2(config, backup)
    temporary = config.with_name(config.name + ".tmp")
    temporary.write_text(tomlkit.dumps(document), encoding="utf-8")
    temporary.replace(config)
    return backup
