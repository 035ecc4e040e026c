"""models.training: the training parts on their own: thresholds, checkpoints and registration, starting weights, resume,
augmentation."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision
from torchvision import tv_tensors

from models.architectures import build_classifier
from models.checkpoint import (
    ChecksumMismatchError,
    WeightsMissingError,
    load_checkpoint,
    register,
    registered_models,
    resolve,
)
from models.codes import NIH_LABELS, VINDR_LABELS
from models.datasets import read_dataset
from models.imaging import UndecodableImageError
from models.training.augment import Augmentation, detection_transform, flip_allowed
from models.training.classifier import ClassifierRecipe, train_classifier
from models.training.loop import TrainOptions
from models.training.pretrained import initialise_classifier
from models.training.thresholds import f1_threshold, sensitivity_threshold
from tests.helpers.synthetic import make_images, write_layout
from tests.helpers.weights import write_xrv_weights

TINY = ClassifierRecipe("resnet18", "scratch", 64, augmentation=Augmentation())


def test_f1_threshold_separates_separable_scores() -> None:
    threshold = f1_threshold([0, 0, 1, 1], [0.1, 0.3, 0.6, 0.9])
    assert 0.3 < threshold < 0.6
    assert f1_threshold([0, 0, 0], [0.1, 0.2, 0.3]) == 0.5, "no positive: the default"


def test_sensitivity_threshold_reaches_the_target() -> None:
    truth = np.array([1, 1, 1, 1, 0, 0, 0, 0, 1, 0])
    scores = np.array([0.9, 0.8, 0.35, 0.6, 0.5, 0.1, 0.2, 0.4, 0.7, 0.3])
    for target in (0.5, 0.8, 1.0):
        threshold = sensitivity_threshold(truth, scores, target)
        assert (scores[truth == 1] >= threshold).mean() >= target
    assert 0.3 < sensitivity_threshold(truth, scores, 1.0) < 0.35


@pytest.fixture(scope="module")
def pneumonia(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_layout("pneumonia", tmp_path_factory.mktemp("pneumonia"), make_images())


def test_training_resumes_from_its_state(pneumonia: Path, tmp_path: Path) -> None:
    dataset = read_dataset("pneumonia", pneumonia)
    run = tmp_path / "run"
    train_classifier(dataset, TINY, TrainOptions(epochs=1, batch_size=8, device="cpu"), run, tmp_path)
    first, _ = load_checkpoint(run / "model.pt")
    path = train_classifier(
        dataset, TINY, TrainOptions(epochs=2, batch_size=8, device="cpu", resume=True), run, tmp_path
    )
    resumed, _ = load_checkpoint(path)
    assert [r["epoch"] for r in resumed.training["history"]] == [1, 2]
    assert resumed.training["history"][0] == first.training["history"][0]
    with pytest.raises(FileNotFoundError, match="nothing to resume"):
        train_classifier(dataset, TINY, TrainOptions(epochs=1, device="cpu", resume=True), tmp_path / "new", tmp_path)


@pytest.fixture(scope="module")
def exported(pneumonia: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("exported")
    return train_classifier(read_dataset("pneumonia", pneumonia), TINY, TrainOptions(epochs=1, device="cpu"), run, run)


def test_register_copies_the_checkpoint_with_its_checksum(exported: Path, tmp_path: Path) -> None:
    registered = register(exported, tmp_path / "weights", "pneumo-v1")
    assert registered.detector_name == "classifier:pneumo-v1" and registered.path == tmp_path / "weights/pneumo-v1.pt"
    assert resolve("pneumo-v1", tmp_path / "weights") == registered.path
    ((listed, metadata),) = registered_models(tmp_path / "weights")
    assert listed.sha256 == registered.sha256 and metadata.codes == {"PNEUMONIA": "Pneumonia"}
    with pytest.raises(ValueError, match="model name"):
        register(exported, tmp_path / "weights", "../escape")


def test_register_refuses_a_checkpoint_that_changed(exported: Path, tmp_path: Path) -> None:
    tampered = tmp_path / "model.pt"
    content = bytearray(exported.read_bytes())
    content[len(content) // 2] ^= 0xFF
    tampered.write_bytes(bytes(content))
    (tmp_path / "model.pt.sha256").write_text((exported.parent / "model.pt.sha256").read_text())
    with pytest.raises(ChecksumMismatchError):
        register(tampered, tmp_path / "weights")


def imagenet_file(weights_dir: Path, model: torch.nn.Module, weights: str) -> Path:
    """A file under torchvision's published name holding a random model's weights, as a site would place it."""
    path = weights_dir / os.path.basename(torchvision.models.get_weight(weights).url)
    weights_dir.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), path)
    return path


def test_imagenet_start_sums_the_colour_stem_into_one_channel(tmp_path: Path) -> None:
    with pytest.raises(WeightsMissingError, match=r"resnet18-f37072fd\.pth"):
        initialise_classifier(build_classifier("resnet18", 2), "resnet18", "imagenet", tmp_path)
    source = torchvision.models.resnet18(weights=None)
    imagenet_file(tmp_path, source, "ResNet18_Weights.IMAGENET1K_V1")
    model = build_classifier("resnet18", 2)
    initialise_classifier(model, "resnet18", "imagenet", tmp_path)
    assert torch.equal(model.conv1.weight, source.conv1.weight.sum(dim=1, keepdim=True))
    assert torch.equal(model.layer4[1].conv2.weight, source.layer4[1].conv2.weight)


def test_imagenet_densenet_file_with_old_key_names_loads(tmp_path: Path) -> None:
    source = torchvision.models.densenet121(weights=None)
    old_style = {k.replace("norm1.", "norm.1.").replace("conv2.", "conv.2."): v for k, v in source.state_dict().items()}
    path = imagenet_file(tmp_path, source, "DenseNet121_Weights.IMAGENET1K_V1")
    torch.save(old_style, path)
    model = build_classifier("densenet121", 3)
    initialise_classifier(model, "densenet121", "imagenet", tmp_path)
    block = model.features.denseblock1.denselayer1
    assert torch.equal(block.conv2.weight, source.features.denseblock1.denselayer1.conv2.weight)


def test_xrv_start_takes_torchxrayvision_features(tmp_path: Path) -> None:
    write_xrv_weights("densenet121-res224-all", tmp_path)
    model = build_classifier("densenet121", 1)
    initialise_classifier(model, "densenet121", "xrv", tmp_path)
    import torchxrayvision as xrv

    source = xrv.models.DenseNet(weights="densenet121-res224-all", cache_dir=str(tmp_path))
    assert torch.equal(model.features.conv0.weight, source.features.conv0.weight)
    with pytest.raises(ValueError, match="densenet121 only"):
        initialise_classifier(build_classifier("resnet18", 1), "resnet18", "xrv", tmp_path)


def test_flips_only_where_anatomy_allows() -> None:
    assert flip_allowed(["Nodule/Mass", "Pleural effusion"], VINDR_LABELS)
    assert not flip_allowed(["Nodule", "Cardiomegaly"], NIH_LABELS)
    assert not flip_allowed(["Aortic enlargement"], VINDR_LABELS)


def test_augmented_boxes_follow_the_lesion() -> None:
    transform = detection_transform(Augmentation(rotation_degrees=10, crop_scale=0.8, horizontal_flip=True), 128)
    image = torch.zeros(3, 128, 128)
    image[:, 40:52, 70:82] = 1.0
    torch.manual_seed(0)
    for _ in range(20):
        boxes = tv_tensors.BoundingBoxes(
            torch.tensor([[70.0, 40.0, 82.0, 52.0]]), format="XYXY", canvas_size=(128, 128)
        )
        out, target = transform(tv_tensors.Image(image), {"boxes": boxes, "labels": torch.tensor([1])})
        if not len(target["boxes"]):
            continue  # cropped away, and dropped with its label
        y, x = np.unravel_index(int(out[0].argmax()), out.shape[1:])
        x0, y0, x1, y1 = target["boxes"][0].tolist()
        assert x0 - 1 <= x <= x1 + 1 and y0 - 1 <= y <= y1 + 1


def test_an_unreadable_image_stops_training_with_its_path(pneumonia: Path, tmp_path: Path) -> None:
    dataset = read_dataset("pneumonia", pneumonia)
    broken = tmp_path / "broken.jpeg"
    broken.write_bytes(b"not an image")
    bad = dataset.subset([replace(dataset.samples[0], image=broken), *dataset.samples[1:]])
    with pytest.raises(UndecodableImageError, match=r"broken\.jpeg: not a readable PNG/JPEG image"):
        train_classifier(bad, TINY, TrainOptions(epochs=1, device="cpu"), tmp_path / "run", tmp_path)
