"""Which torch device a process computes on."""

from __future__ import annotations

import torch


def resolve_device(setting: str) -> torch.device:
    """``auto`` is the first CUDA GPU when one is visible, else the CPU; anything else (cpu, cuda, cuda:1) as given."""
    if setting == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(setting)
