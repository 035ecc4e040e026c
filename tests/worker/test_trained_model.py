"""worker.analyze with a trained checkpoint: A model trained by ``cxr train`` in its own process, registered, then
loaded by a worker: the SR it produces names the checkpoint's sha256 and what it was trained on, and passes dciodvfy and
PixelMed's SR validator.

The two-stage gate: the classifier's gate threshold, chosen on validation, reaches the target sensitivity there.
"""

from __future__ import annotations

from pathlib import Path

import pydicom
import pytest
from sqlalchemy import select

from config.settings import ModelSettings, Settings
from db.engine import SessionFactory
from db.models import JobState, ResultKind, ResultObject
from models.checkpoint import sha256_of
from models.datasets import Split, read_dataset, split_samples
from models.imaging import decode_file
from models.protocol import DetectorOptions
from models.registry import load_detector
from tests.helpers.cli import CLASSIFIER_TRAINING, configure, cxr
from tests.helpers.encode_cases import content_items
from tests.helpers.peers import dciodvfy_errors, pixelmed_sr_errors
from tests.helpers.pipeline import context_for, record
from tests.helpers.synthetic import make_images, write_layout
from worker.analyze import analyze_job

TARGET_SENSITIVITY = 0.9


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A classifier trained and registered as ``classifier:pneumonia`` in a folder of its own."""
    root = tmp_path_factory.mktemp("trained")
    configure(root)
    data = write_layout("pneumonia", root / "data", make_images())
    cxr(
        root,
        "train",
        "classifier",
        "--layout",
        "pneumonia",
        "--data",
        str(data),
        "--out",
        str(root / "run"),
        "--epochs",
        "2",
        "--target-sensitivity",
        str(TARGET_SENSITIVITY),
        *CLASSIFIER_TRAINING,
    )
    cxr(root, "model", "register", str(root / "run" / "model.pt"), "--name", "pneumonia")
    return root


def test_the_worker_sr_carries_the_checkpoint_sha256(
    trained: Path, tmp_path: Path, session_factory: SessionFactory, rg1: Path
) -> None:
    weights = trained / "weights"
    settings = Settings(
        data_dir=tmp_path / "var", detector="classifier:pneumonia", model=ModelSettings(weights_dir=weights)
    )
    job_id = record(session_factory, settings, rg1, detector="classifier:pneumonia")
    outcome = analyze_job(context_for(settings, session_factory), job_id)
    assert outcome.state is JobState.COMPLETED  # encoded, and no destination is configured to send to
    with session_factory() as session:
        (path,) = session.scalars(
            select(ResultObject.path).where(ResultObject.job_id == job_id, ResultObject.kind == ResultKind.SR)
        ).all()
    texts = {
        item.TextValue for item in content_items(pydicom.dcmread(path).ContentSequence) if item.ValueType == "TEXT"
    }
    assert f"weights_sha256={sha256_of(weights / 'pneumonia.pt')}" in texts
    assert "classifier resnet18" in texts and "trained_on=pneumonia (40 images)" in texts
    assert dciodvfy_errors(Path(path)) == []
    assert pixelmed_sr_errors(Path(path)) == []


def test_the_gate_reaches_the_target_sensitivity_on_validation(trained: Path) -> None:
    detector = load_detector("classifier:pneumonia", DetectorOptions(weights_dir=trained / "weights", device="cpu"))
    validation = split_samples(read_dataset("pneumonia", trained / "data"), Split.VALIDATION)
    positives = [s for s in validation.samples if s.labels]
    assert positives, "the synthetic validation split has abnormal images"
    results = detector.detect([decode_file(s.image) for s in positives])
    caught = sum(r.abnormality_score >= detector.abnormal_threshold for r in results)
    assert caught / len(positives) >= TARGET_SENSITIVITY
    assert detector.provenance.parameters["gate_threshold"] == f"{detector.abnormal_threshold:.4g}"


def test_two_stage_runs_the_trained_classifier_as_its_gate(trained: Path, rg1: Path) -> None:
    options = DetectorOptions(weights_dir=trained / "weights", device="cpu")
    two_stage = load_detector("two-stage:classifier:pneumonia+baseline", options)
    gate = load_detector("classifier:pneumonia", options)
    (result,) = two_stage.detect([decode_file(rg1)])
    (gated,) = gate.detect([decode_file(rg1)])
    assert result.abnormality_score == gated.abnormality_score
    assert two_stage.provenance.parameters["classifier_sha256"] == sha256_of(trained / "weights" / "pneumonia.pt")
