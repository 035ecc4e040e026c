"""The network architectures a checkpoint may name, built the same way for training and for serving.

Nothing here downloads: every builder starts from random weights, and training or a checkpoint supplies the rest.
Classifiers take one grey channel. Detectors take the grey image repeated on three channels, as torchvision's do.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

from torch import nn
from torchvision import models as tv
from torchvision.models import detection
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
from torchvision.ops import MultiScaleRoIAlign

CLASSIFIERS: dict[str, Callable[..., nn.Module]] = {
    "densenet121": tv.densenet121,
    "resnet18": tv.resnet18,
    "resnet50": tv.resnet50,
}


def build_classifier(architecture: str, outputs: int) -> nn.Module:
    """A torchvision classifier with a one-channel stem and ``outputs`` logits."""
    if architecture not in CLASSIFIERS:
        raise ValueError(f"unknown classifier architecture {architecture!r}; known: {', '.join(CLASSIFIERS)}")
    model: Any = CLASSIFIERS[architecture](weights=None, num_classes=outputs)
    stem = nn.Conv2d(1, 64, kernel_size=7, stride=2, padding=3, bias=False)
    if architecture.startswith("densenet"):
        model.features.conv0 = stem
    else:
        model.conv1 = stem
    return cast(nn.Module, model)


def cam_layer(model: nn.Module, architecture: str) -> nn.Module:
    """The last feature block, where Grad-CAM reads the classifier's evidence."""
    network: Any = model
    return cast(nn.Module, network.features[-1] if architecture.startswith("densenet") else network.layer4[-1])


def _conv_block(inputs: int, outputs: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(inputs, outputs, 3, stride, 1, bias=False), nn.BatchNorm2d(outputs), nn.ReLU(inplace=True)
    )


def _compact_faster_rcnn(num_classes: int, min_size: int, max_size: int) -> nn.Module:
    """A small Faster R-CNN (six convolutions, stride 8) that trains from scratch on a CPU in minutes: for small
    local datasets, for lesions of 16–64 input pixels, and for the test suite. Production sites use the ResNet50s."""
    body = nn.Sequential(
        _conv_block(3, 16, 2),
        _conv_block(16, 32, 2),
        _conv_block(32, 32, 1),
        _conv_block(32, 64, 2),
        _conv_block(64, 64, 1),
        _conv_block(64, 64, 1),
    )
    body.out_channels = 64  # type: ignore[assignment]
    anchors = AnchorGenerator(sizes=((16, 32, 64),), aspect_ratios=((0.5, 1.0, 2.0),))
    pool = MultiScaleRoIAlign(featmap_names=["0"], output_size=7, sampling_ratio=2)
    return cast(
        nn.Module,
        detection.FasterRCNN(
            body,
            rpn_anchor_generator=anchors,
            box_roi_pool=pool,
            box_head=TwoMLPHead(64 * 7 * 7, 256),
            box_predictor=FastRCNNPredictor(256, num_classes),
            min_size=min_size,
            max_size=max_size,
            image_mean=[0.5] * 3,
            image_std=[0.25] * 3,
        ),
    )


def _torchvision_detector(builder: Callable[..., nn.Module]) -> Callable[[int, int, int], nn.Module]:
    def build(num_classes: int, min_size: int, max_size: int) -> nn.Module:
        return builder(
            weights=None, weights_backbone=None, num_classes=num_classes, min_size=min_size, max_size=max_size
        )

    return build


DETECTORS: dict[str, Callable[[int, int, int], nn.Module]] = {
    "fasterrcnn_resnet50_fpn_v2": _torchvision_detector(detection.fasterrcnn_resnet50_fpn_v2),
    "retinanet_resnet50_fpn_v2": _torchvision_detector(detection.retinanet_resnet50_fpn_v2),
    "fasterrcnn_mobilenet_v3_large_fpn": _torchvision_detector(detection.fasterrcnn_mobilenet_v3_large_fpn),
    "fasterrcnn_compact": _compact_faster_rcnn,
}

IMAGENET_BACKBONES: dict[str, str] = {
    "fasterrcnn_resnet50_fpn_v2": "ResNet50_Weights.IMAGENET1K_V1",
    "retinanet_resnet50_fpn_v2": "ResNet50_Weights.IMAGENET1K_V1",
}
"""Detectors whose backbone can start from torchvision's ImageNet ResNet50 file in the weights folder."""


def build_detector(architecture: str, labels: int, input_size: int) -> nn.Module:
    """``labels`` classes plus the background; the model's own transform must not resize the letterboxed input."""
    if architecture not in DETECTORS:
        raise ValueError(f"unknown detector architecture {architecture!r}; known: {', '.join(DETECTORS)}")
    return DETECTORS[architecture](labels + 1, input_size, input_size)
