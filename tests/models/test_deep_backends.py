"""models.xrv, models.tvdetector and models.twostage: the deep-learning backends, loaded from weight files the tests
make (real architectures, random weights)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest

from models.checkpoint import WeightsMissingError, load_checkpoint, sha256_of
from models.codes import XRV_LABELS, require_known_labels
from models.imaging import DecodedImage, decode_dataset
from models.protocol import DetectorOptions, ImageResult
from models.registry import load_detector
from models.tvdetector import TorchvisionDetector
from models.twostage import TwoStageDetector
from models.xrv import XrvDetector
from tests.helpers.weights import write_detector_checkpoint, write_xrv_weights, xrv_weights_path

DENSENET = "densenet121-res224-all"


@pytest.fixture(scope="module")
def weights_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("weights")
    write_xrv_weights(DENSENET, directory)
    write_detector_checkpoint(directory)
    return directory


@pytest.fixture(scope="module")
def rg1_image(rg1_dataset: pydicom.Dataset) -> DecodedImage:
    return decode_dataset(rg1_dataset)


def boxes_inside(result: ImageResult, image: DecodedImage) -> bool:
    rows, columns = image.pixels.shape
    return all(f.box.inside(rows, columns) for f in result.findings if f.box is not None)


def test_missing_xrv_weights_name_the_file_the_folder_and_the_source(tmp_path: Path) -> None:
    expected = xrv_weights_path(DENSENET, tmp_path).name
    with pytest.raises(WeightsMissingError) as error:
        XrvDetector(DENSENET, DetectorOptions(weights_dir=tmp_path, device="cpu"))
    message = str(error.value)
    assert expected in message and str(tmp_path) in message and "https://" in message
    assert not any(tmp_path.iterdir()), "nothing was downloaded"


def test_xrv_densenet_loads_with_label_order_and_provenance(weights_dir: Path) -> None:
    options = DetectorOptions(weights_dir=weights_dir, device="cpu")
    detector = load_detector(f"xrv:{DENSENET}", options)
    assert load_detector(f"xrv:{DENSENET}", options) is detector, "loaded once per process"
    coded = [str(XRV_LABELS[n]) for n in XRV_LABELS if XRV_LABELS[n] is not None]
    assert list(detector.labels) == coded and len(coded) == 18
    require_known_labels(detector.labels)
    p = detector.provenance
    assert p.name == f"torchxrayvision {DENSENET}" and p.version
    assert p.weights_sha256 == sha256_of(xrv_weights_path(DENSENET, weights_dir))
    assert p.parameters["input_resolution"] == "224"


def test_xrv_boxes_lie_inside_the_image_and_the_heatmap_keeps_its_aspect(
    weights_dir: Path, rg1_image: DecodedImage
) -> None:
    detector = load_detector(f"xrv:{DENSENET}", DetectorOptions(weights_dir=weights_dir, device="cpu"))
    (result,) = detector.detect([rg1_image])
    assert result.findings, "random weights put some labels above their operating points"
    assert boxes_inside(result, rg1_image)
    assert all(0.0 <= f.probability <= 1.0 for f in result.findings)
    assert result.heatmap is not None
    rows, columns = rg1_image.pixels.shape
    assert abs(result.heatmap.shape[0] / result.heatmap.shape[1] - rows / columns) < 0.02
    assert result.abnormality_score == max(f.probability for f in result.findings)


def test_site_thresholds_override_the_operating_points(weights_dir: Path, rg1_image: DecodedImage) -> None:
    strict = {str(label): 0.9 for label in XRV_LABELS.values() if label is not None}
    options = DetectorOptions(weights_dir=weights_dir, device="cpu", thresholds=strict)
    (result,) = load_detector(f"xrv:{DENSENET}", options).detect([rg1_image])
    assert result.findings == () and result.heatmap is None
    with pytest.raises(ValueError, match="Unicorn"):
        XrvDetector(DENSENET, DetectorOptions(weights_dir=weights_dir, device="cpu", thresholds={"Unicorn": 0.5}))


def test_xrv_batches_give_the_same_scores_as_single_images(weights_dir: Path, rg1_image: DecodedImage) -> None:
    strict = {str(label): 0.9 for label in XRV_LABELS.values() if label is not None}
    detector = load_detector(
        f"xrv:{DENSENET}", DetectorOptions(weights_dir=weights_dir, device="cpu", thresholds=strict)
    )
    flipped = DecodedImage(np.ascontiguousarray(rg1_image.pixels[:, ::-1]), None)
    batch = detector.detect([rg1_image, flipped])
    single = [detector.detect([image])[0] for image in (rg1_image, flipped)]
    assert [round(r.abnormality_score, 5) for r in batch] == [round(r.abnormality_score, 5) for r in single]


def test_detector_checkpoint_loads_with_its_metadata(weights_dir: Path, rg1_image: DecodedImage) -> None:
    metadata, _ = load_checkpoint(weights_dir / "vindr.pt")
    assert metadata.architecture == "fasterrcnn_resnet50_fpn_v2" and metadata.input_size == 256
    detector = load_detector("torchvision:vindr.pt", DetectorOptions(weights_dir=weights_dir, device="cpu"))
    assert isinstance(detector, TorchvisionDetector)
    assert {"Nodule", "Effusion", "Aortic enlargement", "Pleural thickening"} <= set(detector.labels)
    assert len(detector.labels) == 14, "every VinDr-CXR class is coded"
    assert detector.provenance.version == "test-1"
    assert detector.provenance.weights_sha256 == sha256_of(weights_dir / "vindr.pt")
    (result,) = detector.detect([rg1_image])
    assert boxes_inside(result, rg1_image)
    with pytest.raises(WeightsMissingError, match=r"absent\.pt"):
        TorchvisionDetector("absent.pt", DetectorOptions(weights_dir=weights_dir, device="cpu"))


class CountingDetector:
    """Wraps a detector and counts the images it is given."""

    def __init__(self, inner: TorchvisionDetector) -> None:
        self.inner, self.seen = inner, 0
        self.labels, self.provenance, self.abnormal_threshold = inner.labels, inner.provenance, inner.abnormal_threshold

    def detect(self, images: list[DecodedImage]) -> list[ImageResult]:
        self.seen += len(images)
        return self.inner.detect(images)


def test_two_stage_runs_the_detector_only_on_abnormal_images(weights_dir: Path, rg1_image: DecodedImage) -> None:
    options = DetectorOptions(weights_dir=weights_dir, device="cpu")
    classifier = load_detector(f"xrv:{DENSENET}", options)
    boxes = CountingDetector(TorchvisionDetector("vindr.pt", options))
    blank = DecodedImage(np.zeros((300, 200), dtype=np.float32), None)
    two = TwoStageDetector(classifier, boxes)  # type: ignore[arg-type]
    gate = [r.abnormality_score >= classifier.abnormal_threshold for r in classifier.detect([rg1_image, blank])]
    results = two.detect([rg1_image, blank])
    assert boxes.seen == sum(gate)
    for result, opened in zip(results, gate, strict=True):
        assert opened or result.findings == ()
    assert two.provenance.parameters["classifier_sha256"] == classifier.provenance.weights_sha256
    named = load_detector(f"two-stage:xrv:{DENSENET}+torchvision:vindr.pt", options)
    assert named.provenance.version == f"{classifier.provenance.version}+test-1"


def test_xrv_resnet50_at_512_loads_with_its_own_resolution(tmp_path: Path, rg1_image: DecodedImage) -> None:
    write_xrv_weights("resnet50-res512-all", tmp_path)
    strict = {str(label): 0.9 for label in XRV_LABELS.values() if label is not None}
    detector = XrvDetector(
        "resnet50-res512-all", DetectorOptions(weights_dir=tmp_path, device="cpu", thresholds=strict)
    )
    assert detector.resolution == 512 and detector.provenance.parameters["input_resolution"] == "512"
    assert len(detector.labels) == 18
    (result,) = detector.detect([rg1_image])
    assert result.findings == () and 0.0 <= result.abnormality_score <= 0.5


def test_grad_cam_hooks_the_model_only_while_it_computes_a_map(weights_dir: Path, rg1_image: DecodedImage) -> None:
    """Hooks left in place fired on every classification, and grad-cam kept each activation until the next map."""
    coded = [str(label) for label in XRV_LABELS.values() if label is not None]
    one_positive = {**dict.fromkeys(coded, 0.9), "Fibrosis": 1e-6}
    detector = XrvDetector(DENSENET, DetectorOptions(weights_dir=weights_dir, device="cpu", thresholds=one_positive))
    layer = detector.model.features[-1]
    assert not layer._forward_hooks
    (result,) = detector.detect([rg1_image])
    assert [f.label for f in result.findings] == ["Fibrosis"] and result.heatmap is not None
    assert not layer._forward_hooks and not detector.model._forward_hooks


def test_a_threshold_chosen_on_reported_scores_becomes_the_xrv_operating_point(
    weights_dir: Path, rg1_image: DecodedImage
) -> None:
    """``cxr validate thresholds`` chooses on the probabilities we report (op_norm: 0.5 at the operating point);
    ``threshold_setting`` turns that into the raw operating point ``model.thresholds`` sets for torchxrayvision."""
    detector = load_detector(f"xrv:{DENSENET}", DetectorOptions(weights_dir=weights_dir, device="cpu"))
    assert isinstance(detector, XrvDetector)
    (result,) = detector.detect([rg1_image])
    scores = {c.label: c.probability for c in result.candidates}
    for label in ("Effusion", "Cardiomegaly"):
        for margin, reported in ((-0.01, True), (0.01, False)):
            setting = detector.threshold_setting(label, scores[label] + margin)
            options = DetectorOptions(weights_dir=weights_dir, device="cpu", thresholds={label: setting})
            (again,) = load_detector(f"xrv:{DENSENET}", options).detect([rg1_image])
            assert (label in {f.label for f in again.findings}) is reported, (label, margin, scores[label])
