"""Starting weights from the local weights folder: torchvision's ImageNet files or torchxrayvision's chest X-ray
DenseNet. Nothing is downloaded; a missing file stops training with the file's name, folder and address.

ImageNet files are read as torchvision publishes them (old DenseNet key names included); their three-channel stem is
summed into our one grey channel, which gives the same response to a grey image.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import torch
import torchvision
from torch import nn

from models.checkpoint import WeightsMissingError
from models.xrv import weights_file

CLASSIFIER_IMAGENET = {
    "densenet121": "DenseNet121_Weights.IMAGENET1K_V1",
    "resnet18": "ResNet18_Weights.IMAGENET1K_V1",
    "resnet50": "ResNet50_Weights.IMAGENET1K_V1",
}
XRV_DENSENET = "densenet121-res224-all"
_OLD_DENSENET_KEY = re.compile(
    r"^(.*denselayer\d+\.(?:norm|relu|conv))\.((?:[12])\.(?:weight|bias|running_mean|running_var))$"
)
"""torchvision's published DenseNet files name ``norm.1`` what its modules call ``norm1``."""
STEMS = ("conv1.weight", "features.conv0.weight")


def imagenet_file(weights_name: str, weights_dir: Path) -> Path:
    url = str(torchvision.models.get_weight(weights_name).url)
    path = weights_dir / os.path.basename(url)
    if not path.is_file():
        raise WeightsMissingError(
            f"ImageNet weights not found: place {path.name} in {weights_dir} (download it once "
            f"from {url}), or train with --init scratch"
        )
    return path


def _imagenet_state(weights_name: str, weights_dir: Path) -> dict[str, Any]:
    raw = torch.load(imagenet_file(weights_name, weights_dir), map_location="cpu", weights_only=True)
    state = {_OLD_DENSENET_KEY.sub(r"\1\2", key): value for key, value in raw.items()}
    for stem in STEMS:
        if stem in state and state[stem].shape[1] == 3:
            state[stem] = state[stem].sum(dim=1, keepdim=True)
    return state


def _load_partial(module: nn.Module, state: dict[str, Any], skip: tuple[str, ...]) -> None:
    """Load every matching tensor except the heads in ``skip``; anything else missing is an error."""
    kept = {k: v for k, v in state.items() if not k.startswith(skip)}
    missing, _ = module.load_state_dict(kept, strict=False)
    unexpected_missing = [k for k in missing if not k.startswith(skip)]
    if unexpected_missing:
        raise ValueError(f"starting weights lack {len(unexpected_missing)} tensors, e.g. {unexpected_missing[0]}")


def initialise_classifier(model: nn.Module, architecture: str, init: str, weights_dir: Path) -> None:
    if init == "scratch":
        return
    if init == "imagenet":
        _load_partial(model, _imagenet_state(CLASSIFIER_IMAGENET[architecture], weights_dir), ("fc.", "classifier."))
        return
    if init == "xrv":
        if architecture != "densenet121":
            raise ValueError("--init xrv starts a densenet121 only (torchxrayvision's chest X-ray DenseNet)")
        import torchxrayvision as xrv

        weights_file(XRV_DENSENET, weights_dir)
        source: Any = xrv.models.DenseNet(weights=XRV_DENSENET, cache_dir=str(weights_dir))
        target: Any = model
        target.features.load_state_dict(source.features.state_dict())
        return
    raise ValueError(f"unknown --init {init!r}: use scratch, imagenet or xrv")


def initialise_detector_backbone(
    model: nn.Module, architecture: str, init: str, weights_dir: Path, imagenet_backbones: dict[str, str]
) -> None:
    if init == "scratch":
        return
    if init != "imagenet" or architecture not in imagenet_backbones:
        raise ValueError(
            f"--init {init} is not available for {architecture}; ImageNet backbones: {', '.join(imagenet_backbones)}"
        )
    state = torch.load(
        imagenet_file(imagenet_backbones[architecture], weights_dir), map_location="cpu", weights_only=True
    )
    network: Any = model
    _load_partial(network.backbone.body, state, ("fc.",))
