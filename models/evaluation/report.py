"""``cxr evaluate``'s outputs: ``metrics.json``, the plots, and a short ``report.md``; nothing that names a patient
or an image file goes into them (examples are numbered)."""

from __future__ import annotations

import datetime
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from models.datasets.base import LabelledSet, Split, split_samples
from models.evaluation.classical import classical_baselines
from models.evaluation.collect import Evaluated, collect
from models.evaluation.metrics import classification_metrics, mean_average_precision
from models.evaluation.plots import plot_all
from models.protocol import Detector

METRICS_FILE = "metrics.json"


def _number(value: Any) -> str:
    return "–" if value is None else f"{float(value):.3f}"


def _markdown(metrics: dict[str, Any]) -> str:
    lines = [
        f"# Evaluation: {metrics['detector']['name']} {metrics['detector']['version']}",
        "",
        f"{metrics['dataset']['dataset']}, split {metrics['split']}: {metrics['images']} images; {metrics['created']}.",
        "",
        "| label | support | accuracy | precision | recall | F1 | AUROC | AUPRC |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for label, row in metrics["classification"]["labels"].items():
        lines.append(
            f"| {label} | {int(row['support'])} | "
            + " | ".join(_number(row[k]) for k in ("accuracy", "precision", "recall", "f1", "auroc", "auprc"))
            + " |"
        )
    for average in ("macro", "micro"):
        row = metrics["classification"]["average"][average]
        lines.append(
            f"| *{average}* | | "
            + " | ".join(_number(row[k]) for k in ("accuracy", "precision", "recall", "f1", "auroc", "auprc"))
            + " |"
        )
    if "detection" in metrics:
        found = metrics["detection"]
        lines += [
            "",
            f"Detection: mAP@0.5 {_number(found['map_50'])}, mAP@0.5:0.95 {_number(found['map_50_95'])}, "
            f"mAP@0.4 {_number(found['map_40'])} (VinBigData's metric).",
        ]
    lines += ["", "| compared with | macro AUROC | macro F1 | macro AUPRC |", "|---|---|---|---|"]
    rows = {"this detector": metrics["classification"], **metrics.get("baselines", {})}
    for name, result in rows.items():
        macro = result["average"]["macro"]
        lines.append(f"| {name} | {_number(macro['auroc'])} | {_number(macro['f1'])} | {_number(macro['auprc'])} |")
    lines += ["", "Plots: " + ", ".join(metrics["plots"]), ""]
    return "\n".join(lines)


def evaluate(
    detector: Detector, dataset: LabelledSet, split: Split | None, out: Path, baselines: bool = True, seed: int = 0
) -> dict[str, Any]:
    """Evaluate on ``split`` of ``dataset`` (all of it when None); write metrics.json, plots and report.md."""
    chosen = dataset if split is None else split_samples(dataset, split, seed)
    if not chosen.samples:
        raise ValueError(f"the {split} split of this {dataset.layout} set is empty")
    evaluated: Evaluated = collect(detector, chosen)
    metrics: dict[str, Any] = {
        "detector": {**asdict(detector.provenance), "labels": list(detector.labels)},
        "dataset": dataset.describe(),
        "split": str(split or "all"),
        "images": len(chosen.samples),
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "classification": classification_metrics(
            evaluated.labels, evaluated.truth, evaluated.predicted, evaluated.scores
        ),
    }
    if chosen.has_boxes:
        metrics["detection"] = mean_average_precision(evaluated.predicted_boxes, evaluated.true_boxes, evaluated.labels)
    training = split_samples(dataset, Split.TRAIN, seed)
    if baselines and training.samples and split is not Split.TRAIN:
        metrics["baselines"] = classical_baselines(training, chosen, evaluated.labels, seed)
    out.mkdir(parents=True, exist_ok=True)
    metrics["plots"] = [str(p.relative_to(out)) for p in plot_all(evaluated, out)]
    (out / METRICS_FILE).write_text(json.dumps(metrics, indent=2))
    (out / "report.md").write_text(_markdown(metrics))
    return metrics
