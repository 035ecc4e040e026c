"""``cxr validate report``: the detector against the site's radiologists over a period, per label and for "any
abnormality", overall and by equipment, by view and by the number of positive labels (multi-finding films are where
commercial tools' specificity fell: Plesner et al., Radiology 2023).

Writes ``metrics.json``, ``report.md`` and ROC and PR plots. A study counts for a label when the readers' consensus
is positive or negative; uncertain or unread studies are left out of that label and counted as such. "Any
abnormality" is positive when any label is, negative when every label is negative. No patient identifier and no UID
goes into the outputs.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from db.engine import SessionFactory
from db.enums import ResultMode
from db.models import TruthValue
from db.validation import ModelIdentity, StudyScores, analysed_studies, consensus_truth, latest_model
from models.evaluation.agreement import CONFUSION_LAYOUT, METRICS, agreement
from models.evaluation.plots import label_curves

ANY = "any abnormality"
METRICS_FILE = "metrics.json"


class NothingToReportError(ValueError):
    """No analysed study with the site's truth in the chosen period and mode."""


@dataclass(frozen=True)
class Reading:
    """One study as the report sees it: the model's outputs and the readers' consensus."""

    study: StudyScores
    truth: dict[str, TruthValue]

    def positives(self, labels: Sequence[str]) -> int:
        return sum(self.truth.get(label) is TruthValue.POSITIVE for label in labels)


@dataclass(frozen=True)
class Column:
    """One label (or "any abnormality") over the studies where its truth is known."""

    label: str
    truth: np.ndarray
    predicted: np.ndarray
    scores: np.ndarray
    left_out: int


def column(readings: Sequence[Reading], labels: Sequence[str], label: str) -> Column:
    truth, predicted, scores, left_out = [], [], [], 0
    for reading in readings:
        if label == ANY:
            values = [reading.truth.get(name) for name in labels]
            known = 1 if TruthValue.POSITIVE in values else 0 if all(v is TruthValue.NEGATIVE for v in values) else None
            positive = any(reading.study.positive.get(name, False) for name in labels)
            score = max((reading.study.scores.get(name, 0.0) for name in labels), default=0.0)
        else:
            value = reading.truth.get(label)
            known = {TruthValue.POSITIVE: 1, TruthValue.NEGATIVE: 0}.get(value) if value is not None else None
            positive, score = reading.study.positive.get(label, False), reading.study.scores.get(label, 0.0)
        if known is None:
            left_out += 1
            continue
        truth.append(known)
        predicted.append(int(positive))
        scores.append(score)
    return Column(
        label,
        np.array(truth, dtype=np.int64),
        np.array(predicted, dtype=np.int64),
        np.array(scores, dtype=np.float64),
        left_out,
    )


def _measure(readings: Sequence[Reading], labels: Sequence[str], resamples: int, seed: int) -> dict[str, Any]:
    measured: dict[str, Any] = {}
    for label in (*labels, ANY):
        col = column(readings, labels, label)
        if len(col.truth):
            measured[label] = {
                **agreement(col.truth, col.predicted, col.scores, resamples, seed),
                "left_out": col.left_out,
            }
    return measured


def _positive_group(reading: Reading, labels: Sequence[str]) -> str:
    count = reading.positives(labels)
    return "3 or more" if count >= 3 else str(count)


BREAKDOWNS: dict[str, Callable[[Reading, Sequence[str]], str]] = {
    "equipment": lambda reading, _labels: reading.study.equipment,
    "view": lambda reading, _labels: reading.study.view,
    "positive labels": _positive_group,
}


def _breakdowns(readings: Sequence[Reading], labels: Sequence[str], resamples: int, seed: int) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for name, key in BREAKDOWNS.items():
        groups: dict[str, list[Reading]] = defaultdict(list)
        for reading in readings:
            groups[key(reading, labels)].append(reading)
        result[name] = {group: _measure(members, labels, resamples, seed) for group, members in sorted(groups.items())}
    return result


def _cell(value: dict[str, Any]) -> str:
    if value["estimate"] is None:
        return "–"
    if value["ci_low"] is None:
        return f"{value['estimate']:.3f}"
    return f"{value['estimate']:.3f} ({value['ci_low']:.3f}–{value['ci_high']:.3f})"


def _table(rows: dict[str, dict[str, Any]], first: str) -> list[str]:
    lines = [
        f"| {first} | studies | TN | FP | FN | TP | sensitivity | specificity | PPV | NPV | AUROC |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, row in rows.items():
        (tn, fp), (fn, tp) = row["confusion_matrix"]
        lines.append(
            f"| {name} | {row['studies']} | {tn} | {fp} | {fn} | {tp} | "
            + " | ".join(_cell(row[m]) for m in METRICS)
            + " |"
        )
    return lines


def markdown(metrics: dict[str, Any]) -> str:
    period = metrics["period"]
    lines = [
        f"# Agreement with the site's radiologists: {metrics['model']['text']}",
        "",
        f"{metrics['studies']['with_truth']} studies with truth of {metrics['studies']['analysed']} analysed "
        f"({metrics['mode']} results, {period['since'] or 'start'} to {period['until'] or 'now'}); created "
        f"{metrics['created']}. 95% bootstrap intervals ({metrics['resamples']} resamples) in brackets.",
        "",
        *_table(metrics["labels"], "label"),
        "",
        "TN, FP, FN, TP: the confusion matrix. A study whose consensus for a label is uncertain, or that no reader "
        "read for it, is left out of that label: "
        + ", ".join(f"{k} {v['left_out']}" for k, v in metrics["labels"].items())
        + ".",
    ]
    for name, groups in metrics["breakdowns"].items():
        lines += ["", f"## By {name}", ""]
        rows = {f"{group}: {label}": row for group, measured in groups.items() for label, row in measured.items()}
        lines += _table(rows, f"{name}: label")
    lines += ["", "Plots: " + ", ".join(metrics["plots"]), ""]
    return "\n".join(lines)


def write_report(
    sessions: SessionFactory,
    out: Path,
    mode: ResultMode = ResultMode.ALL,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    resamples: int = 1000,
    seed: int = 0,
) -> dict[str, Any]:
    with sessions() as session:
        model = latest_model(session)
        if model is None:
            raise NothingToReportError("no analysis has recorded scores yet")
        studies = analysed_studies(session, model, mode, since, until)
        truth = consensus_truth(session, [s.study_instance_uid for s in studies])
    readings = [Reading(s, truth[s.study_instance_uid]) for s in studies if s.study_instance_uid in truth]
    labels = sorted({label for s in studies for label in s.scores} & {label for r in readings for label in r.truth})
    if not readings or not labels:
        raise NothingToReportError(
            f"none of the {len(studies)} studies analysed by {_identity(model)['text']} in this period has truth for "
            "a label it reports; run: cxr validate import FILE.csv"
        )
    metrics: dict[str, Any] = {
        "model": _identity(model),
        "mode": str(mode),
        "period": {"since": since.isoformat() if since else None, "until": until.isoformat() if until else None},
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "resamples": resamples,
        "studies": {"analysed": len(studies), "with_truth": len(readings)},
        "labels": _measure(readings, labels, resamples, seed),
        "breakdowns": _breakdowns(readings, labels, resamples, seed),
        "layout": f"confusion_matrix: {CONFUSION_LAYOUT}",
    }
    out.mkdir(parents=True, exist_ok=True)
    columns = [column(readings, labels, label) for label in (*labels, ANY)]
    plots = label_curves([(c.label, c.truth, c.scores) for c in columns], out)
    metrics["plots"] = [str(p.relative_to(out)) for p in plots]
    (out / METRICS_FILE).write_text(json.dumps(metrics, indent=2))
    (out / "report.md").write_text(markdown(metrics))
    return metrics


def _identity(model: ModelIdentity) -> dict[str, Any]:
    return {**asdict(model), "text": model.text}
