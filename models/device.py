"""Which torch device a process computes on, and how models and batches are laid out for it."""

from __future__ import annotations

import copy
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

from models.graphs import GraphedModule


def resolve_device(setting: str) -> torch.device:
    """``auto`` is the first CUDA GPU when one is visible, else the CPU; anything else (cpu, cuda, cuda:1) as given."""
    if setting == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(setting)


def for_inference(model: nn.Module, device: torch.device) -> nn.Module:
    """The model on ``device`` in eval mode; on CUDA in channels_last, the layout tensor cores want.

    On the CPU the default layout is faster.
    """
    model = model.to(device).eval()
    return model.to(memory_format=torch.channels_last) if device.type == "cuda" else model


def image_batch(arrays: Sequence[npt.NDArray[np.float32]], device: torch.device) -> torch.Tensor:
    """Same-sized 2-D images as an N×1×H×W tensor on ``device``, in the layout ``for_inference`` gives the model."""
    tensor = torch.from_numpy(np.stack(arrays)[:, None]).to(device)
    return tensor.contiguous(memory_format=torch.channels_last) if device.type == "cuda" else tensor


def classification_copy(model: nn.Module, device: torch.device, body: str | None = None) -> nn.Module:
    """The network that classifies: on CUDA an fp16 copy of ``model`` replayed from CUDA graphs, else ``model``.

    ``body`` names the child module to graph when the model's own ``forward`` cannot be recorded (torchxrayvision's
    synchronises with the host when it normalises its outputs); by default the whole model is graphed. fp16 weights
    spare every call the cast of every weight. Grad-CAM keeps the fp32 ``model``: its gradients can underflow in fp16.
    """
    if device.type != "cuda":
        return model
    half = copy.deepcopy(model).half()
    if body is None:
        return GraphedModule(half)
    setattr(half, body, GraphedModule(getattr(half, body)))
    return half


def inference_dtype(device: torch.device) -> torch.dtype:
    """What ``classification_copy``'s network takes."""
    return torch.float16 if device.type == "cuda" else torch.float32
