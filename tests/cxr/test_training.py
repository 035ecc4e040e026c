"""cxr.training: ``cxr train`` → ``cxr model register`` → ``cxr detect`` → ``cxr evaluate``, in every supported dataset
layout.

Each layout holds 40 synthetic images (tests/helpers/synthetic.py): real radiograph backgrounds with bright
round lesions at known places. Training is 2 epochs on the CPU, through the real command line in its own process.
A detector must beat the same architecture untrained (``--epochs 0``, same seed) on mAP@0.5 over the test split.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import pytest

from models.checkpoint import load_checkpoint, sha256_of
from tests.helpers.cli import CLASSIFIER_TRAINING, configure, cxr
from tests.helpers.synthetic import SyntheticImage, make_images, write_layout

DETECTOR_TRAINING = (
    "--architecture",
    "fasterrcnn_compact",
    "--init",
    "scratch",
    "--input-size",
    "256",
    "--batch-size",
    "1",
    "--learning-rate",
    "5e-4",
    "--device",
    "cpu",
)
LAYOUTS = {"nih": "detector", "vindr": "detector", "csv": "detector", "pneumonia": "classifier", "covid": "classifier"}
PER_LABEL = {"support", "accuracy", "precision", "recall", "f1", "auroc", "auprc"}
AVERAGED = {"accuracy", "precision", "recall", "f1", "auroc", "auprc"}


@pytest.fixture(scope="module")
def images() -> list[SyntheticImage]:
    return make_images()


def assert_png(path: Path) -> None:
    assert path.stat().st_size > 1000, path
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", path
    assert cv2.imread(str(path)) is not None, path


def assert_complete(metrics: dict[str, object], results: Path, boxes: bool) -> None:
    classification = metrics["classification"]
    assert isinstance(classification, dict)
    for row in classification["labels"].values():
        assert set(row) == PER_LABEL and row["auroc"] is not None and row["auprc"] is not None
    for average in ("macro", "micro"):
        assert set(classification["average"][average]) == AVERAGED
    matrices = classification["confusion_matrix"]
    assert sum(map(sum, matrices["any_finding"])) == metrics["images"]
    if boxes:
        detection = metrics["detection"]
        assert isinstance(detection, dict) and {"map_50", "map_50_95", "map_40"} <= set(detection)
    baselines = metrics["baselines"]
    assert isinstance(baselines, dict) and set(baselines) == {"logistic_regression", "random_forest"}
    plots = metrics["plots"]
    assert isinstance(plots, list)
    assert any(p.startswith("roc_") for p in plots) and any(p.startswith("pr_") for p in plots)
    assert "confusion_matrix.png" in plots and any(p.startswith("examples/tp_") for p in plots)
    for plot in plots:
        assert_png(results / plot)
    report = (results / "report.md").read_text()
    assert "AUROC" in report and "random_forest" in report


def evaluate(tmp_path: Path, detector: str, layout: str, data: Path, run: str) -> dict[str, object]:
    cxr(
        tmp_path,
        "evaluate",
        "--detector",
        detector,
        "--layout",
        layout,
        "--data",
        str(data),
        "--out",
        str(tmp_path / "results" / run),
    )
    metrics: dict[str, object] = json.loads((tmp_path / "results" / run / "metrics.json").read_text())
    return metrics


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_train_register_detect_evaluate(layout: str, images: list[SyntheticImage], tmp_path: Path) -> None:
    configure(tmp_path)
    data = write_layout(layout, tmp_path / "data" / layout, images)
    kind = LAYOUTS[layout]
    training = DETECTOR_TRAINING if kind == "detector" else CLASSIFIER_TRAINING
    cxr(
        tmp_path,
        "train",
        kind,
        "--layout",
        layout,
        "--data",
        str(data),
        "--out",
        str(tmp_path / "run"),
        "--epochs",
        "2",
        *training,
    )
    exported = tmp_path / "run" / "model.pt"
    assert (tmp_path / "run" / "model.pt.sha256").read_text().split()[0] == sha256_of(exported)
    metadata, _ = load_checkpoint(exported)
    assert metadata.kind == kind and len(metadata.training["history"]) == 2
    assert metadata.training["images"] == 40 and "dataset" in metadata.training
    assert set(metadata.thresholds) == set(metadata.labels) and all(metadata.codes.values())

    output = cxr(tmp_path, "model", "register", str(exported), "--name", f"{layout}-model")
    name = f"{'classifier' if kind == 'classifier' else 'torchvision'}:{layout}-model"
    assert name in output
    assert sha256_of(tmp_path / "weights" / f"{layout}-model.pt") == sha256_of(exported)

    sample = sorted(
        p for p in (tmp_path / "data").rglob("*") if p.suffix in (".png", ".jpeg", ".dicom") and "masks" not in p.parts
    )[:2]
    cxr(tmp_path, "detect", *map(str, sample), "--out", str(tmp_path / "detect"), "--detector", name)
    document = json.loads((tmp_path / "detect" / "findings.json").read_text())
    assert document["detector"]["weights_sha256"] == sha256_of(exported) and len(document["images"]) == 2

    trained = evaluate(tmp_path, name, layout, data, "trained")
    assert_complete(trained, tmp_path / "results" / "trained", boxes=kind == "detector")
    if kind == "detector":
        cxr(
            tmp_path,
            "train",
            kind,
            "--layout",
            layout,
            "--data",
            str(data),
            "--out",
            str(tmp_path / "untrained"),
            "--epochs",
            "0",
            *training,
        )
        untrained = evaluate(tmp_path, f"torchvision:{tmp_path / 'untrained' / 'model.pt'}", layout, data, "untrained")
        trained_map, untrained_map = trained["detection"]["map_50"], untrained["detection"]["map_50"]  # type: ignore[index]
        assert trained_map > untrained_map, (trained_map, untrained_map)
