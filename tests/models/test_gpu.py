"""models.device and the deep backends: the deep backends on CUDA: the same answers as on the CPU, in fp16 with
channels_last, batched.

Marked ``gpu``: skipped where torch sees no GPU (tests/conftest.py). Weights are random (tests/helpers/weights.py),
so these check the serving path on the GPU, not accuracy.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest
import torch

from models.codes import XRV_LABELS
from models.graphs import GraphedModule
from models.imaging import DecodedImage, decode_dataset
from models.protocol import DetectorOptions, ImageResult
from models.tvdetector import TorchvisionDetector
from models.xrv import XrvDetector
from tests.helpers.weights import write_detector_checkpoint, write_xrv_weights

pytestmark = pytest.mark.gpu

DENSENET = "densenet121-res224-all"
FP16_TOLERANCE = 0.01
"""Probabilities from fp16 autocast against fp32 on the CPU; fp16 has about three significant digits."""


@pytest.fixture(scope="module")
def weights_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("weights")
    write_xrv_weights(DENSENET, directory)
    write_detector_checkpoint(directory, "vindr-1024.pt", input_size=1024)
    return directory


@pytest.fixture(scope="module")
def images(rg1_dataset: pydicom.Dataset) -> list[DecodedImage]:
    source = decode_dataset(rg1_dataset)
    return [source, DecodedImage(np.ascontiguousarray(source.pixels[:, ::-1]), None)]


def candidate_scores(result: ImageResult) -> dict[str, float]:
    return {finding.label: finding.probability for finding in result.candidates}


def boxes_inside(results: list[ImageResult], image: DecodedImage) -> bool:
    rows, columns = image.pixels.shape
    return all(f.box.inside(rows, columns) for r in results for f in r.findings if f.box is not None)


def test_xrv_on_cuda_runs_in_channels_last_and_matches_the_cpu(weights_dir: Path, images: list[DecodedImage]) -> None:
    on_cpu = XrvDetector(DENSENET, DetectorOptions(weights_dir=weights_dir, device="cpu"))
    on_gpu = XrvDetector(DENSENET, DetectorOptions(weights_dir=weights_dir, device="auto"))
    assert on_gpu.device.type == "cuda", "auto picks the GPU when one is visible"
    first = next(on_gpu.model.parameters())
    assert first.is_cuda and first.dim() == 4 and first.is_contiguous(memory_format=torch.channels_last)
    assert next(on_gpu.classifier.parameters()).dtype == torch.float16, "classification in fp16"
    assert isinstance(on_gpu.classifier.features, GraphedModule)
    assert first.dtype == torch.float32, "Grad-CAM keeps the fp32 model"
    assert on_gpu.provenance == on_cpu.provenance, "provenance does not depend on the device"
    for cpu_result, gpu_result in zip(on_cpu.detect(images), on_gpu.detect(images), strict=True):
        expected, actual = candidate_scores(cpu_result), candidate_scores(gpu_result)
        assert expected.keys() == actual.keys()
        assert max(abs(expected[k] - actual[k]) for k in expected) < FP16_TOLERANCE
    assert boxes_inside(on_gpu.detect(images), images[0])
    assert on_gpu.classifier.features.recorded_sizes == [1, 2], "the load's warm-up and the pair"


def test_xrv_grad_cam_on_cuda_agrees_with_the_cpu(weights_dir: Path, images: list[DecodedImage]) -> None:
    every_label = {str(label): 1e-6 for label in XRV_LABELS.values() if label is not None}
    results = {
        device: XrvDetector(
            DENSENET, DetectorOptions(weights_dir=weights_dir, device=device, thresholds=every_label)
        ).detect(images)
        for device in ("cpu", "cuda")
    }
    for cpu_result, gpu_result in zip(results["cpu"], results["cuda"], strict=True):
        assert cpu_result.heatmap is not None and gpu_result.heatmap is not None
        correlation = float(np.corrcoef(cpu_result.heatmap.ravel(), gpu_result.heatmap.ravel())[0, 1])
        cpu_boxes = {f.label: f.box for f in cpu_result.findings}
        gpu_boxes = {f.label: f.box for f in gpu_result.findings}
        assert cpu_boxes.keys() == gpu_boxes.keys() == set(every_label)
        # With random weights a label's CAM can be a nearly cancelling sum at the level of float noise; such a
        # label has no box on either device, or an unstable one. Most labels must agree.
        overlap = {
            label: (box.iou(gpu_boxes[label]) if box and gpu_boxes[label] else box is gpu_boxes[label])
            for label, box in cpu_boxes.items()
        }
        agreeing = [label for label, value in overlap.items() if value is True or (value and value >= 0.5)]
        assert correlation >= 0.9 and len(agreeing) >= 12, f"heat correlation {correlation:.3f}; {overlap}"
    assert boxes_inside(results["cuda"], images[0])


def test_batches_on_cuda_score_as_the_images_do_alone(weights_dir: Path, images: list[DecodedImage]) -> None:
    strict = {str(label): 0.9 for label in XRV_LABELS.values() if label is not None}
    detector = XrvDetector(DENSENET, DetectorOptions(weights_dir=weights_dir, device="cuda", thresholds=strict))
    alone = [detector.detect([image])[0] for image in images]
    for count in (64, 3):  # 3 is padded to a graph of 4
        for i, result in enumerate(detector.detect([images[i % 2] for i in range(count)])):
            expected, actual = candidate_scores(alone[i % 2]), candidate_scores(result)
            assert max(abs(expected[k] - actual[k]) for k in expected) < FP16_TOLERANCE


def test_torchvision_detector_at_1024_on_cuda(weights_dir: Path, images: list[DecodedImage]) -> None:
    detector = TorchvisionDetector("vindr-1024.pt", DetectorOptions(weights_dir=weights_dir, device="cuda"))
    assert next(detector.model.parameters()).is_cuda
    results = detector.detect(images * 4)
    assert len(results) == 8
    assert any(r.candidates for r in results), "random weights still propose boxes"
    assert all(0.0 <= f.probability <= 1.0 for r in results for f in r.candidates)
    assert boxes_inside(results, images[0])
