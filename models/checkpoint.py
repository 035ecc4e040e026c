"""The one checkpoint format for the models this project trains and serves (``classifier:`` and ``torchvision:``).

A checkpoint is one ``torch.save`` dictionary holding tensors and plain data only, so it loads with
``weights_only=True`` and no code in it can run: the weights, and metadata with the architecture, the labels in output
order and their codes in ``models.codes``, the input size and pixel scaling, thresholds, what it was trained on, its
validation metrics and its version. Beside it, ``<file>.sha256`` holds the file's digest (``sha256sum`` format);
registering checks it, and every result object the workers make names it.
"""

from __future__ import annotations

import enum
import hashlib
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from models.extras import WeightsMissingError

__all__ = ["WeightsMissingError"]

FORMAT = 2
READABLE_FORMATS = (1, 2)


class ModelKind(enum.StrEnum):
    CLASSIFIER = "classifier"
    DETECTOR = "detector"


class ChecksumMismatchError(ValueError):
    """A checkpoint's bytes do not match the sha256 recorded beside it."""


@dataclass(frozen=True)
class CheckpointMetadata:
    architecture: str
    labels: list[str]
    """Output names in order (the dataset's own names); a detector's class index i+1 is labels[i]."""
    input_size: int = 1024
    thresholds: dict[str, float] = field(default_factory=dict)
    """Per-label operating thresholds, keyed by the names in ``labels``."""
    default_threshold: float = 0.5
    version: str = "0"
    format: int = FORMAT
    kind: str = ModelKind.DETECTOR.value
    codes: dict[str, str | None] = field(default_factory=dict)
    """Output name → ``models.codes.FindingLabel`` value; None means trained on but not reported (no code)."""
    pixel_scale: float = 1.0
    pixel_offset: float = 0.0
    """The model input is the letterboxed [0, 1] image times ``pixel_scale`` plus ``pixel_offset``."""
    gate_threshold: float | None = None
    """A classifier's abnormality threshold for the two-stage gate, tuned on validation to a target sensitivity."""
    training: dict[str, Any] = field(default_factory=dict)
    """What it was trained on and how: layout, sample counts, label counts, epochs, augmentation, seed."""
    metrics: dict[str, Any] = field(default_factory=dict)
    """Validation metrics at export."""
    created: str = ""


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def checksum_path(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def save_checkpoint(model: nn.Module, metadata: CheckpointMetadata, path: Path) -> str:
    """Write the checkpoint atomically, then its ``.sha256`` file; returns the digest."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.", delete=False) as handle:
        torch.save({"metadata": asdict(metadata), "state_dict": model.state_dict()}, handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(handle.name, path)
    digest = sha256_of(path)
    checksum_path(path).write_text(f"{digest}  {path.name}\n")
    return digest


def load_checkpoint(path: Path) -> tuple[CheckpointMetadata, dict[str, Any]]:
    if not path.is_file():
        raise WeightsMissingError(
            f"checkpoint not found: place {path.name} in {path.parent} "
            "(written by `cxr train`, made available with `cxr model register`)"
        )
    content = torch.load(path, map_location="cpu", weights_only=True)  # tensors and plain data only: no code runs
    raw = dict(content["metadata"])
    if raw.get("format") not in READABLE_FORMATS:
        raise ValueError(
            f"{path.name}: checkpoint format {raw.get('format')}, this release reads "
            f"{', '.join(map(str, READABLE_FORMATS))}"
        )
    known = set(CheckpointMetadata.__dataclass_fields__)
    metadata = CheckpointMetadata(**{k: v for k, v in raw.items() if k in known})
    return metadata, content["state_dict"]


def load_for_serving(
    argument: str, weights_dir: Path, kind: ModelKind
) -> tuple[Path, CheckpointMetadata, dict[str, Any]]:
    """The checkpoint a ``classifier:`` or ``torchvision:`` name points at, refused if it is the other kind."""
    path = resolve(argument, weights_dir)
    metadata, state = load_checkpoint(path)
    if metadata.kind != kind:
        prefix = "torchvision" if metadata.kind == ModelKind.DETECTOR else "classifier"
        raise ValueError(f"{path.name} is a {metadata.kind} checkpoint: load it as {prefix}:{argument}")
    return path, metadata, state


def verify_checksum(path: Path) -> str:
    """The file's sha256, checked against its ``.sha256`` file when there is one."""
    digest = sha256_of(path)
    recorded = checksum_path(path)
    if recorded.is_file():
        expected = recorded.read_text().split()[0] if recorded.read_text().split() else ""
        if expected != digest:
            raise ChecksumMismatchError(f"{path.name}: sha256 {digest} does not match {recorded.name} ({expected})")
    return digest


def resolve(argument: str, weights_dir: Path) -> Path:
    """``name`` (registered as ``name.pt``), a file name in the weights folder, or an absolute path."""
    given = Path(argument)
    if given.is_absolute():
        return given
    registered = weights_dir / f"{argument}.pt"
    return registered if not given.suffix and registered.is_file() else weights_dir / argument


@dataclass(frozen=True)
class Registered:
    name: str
    kind: ModelKind
    path: Path
    sha256: str

    @property
    def detector_name(self) -> str:
        prefix = "classifier" if self.kind is ModelKind.CLASSIFIER else "torchvision"
        return f"{prefix}:{self.name}"


NAME_CHARACTERS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")


def register(source: Path, weights_dir: Path, name: str | None = None) -> Registered:
    """Copy a checkpoint into the weights folder as ``<name>.pt`` with its checksum, after checking it reads."""
    digest = verify_checksum(source)
    metadata, _ = load_checkpoint(source)
    name = name or source.stem
    if not name or not set(name) <= NAME_CHARACTERS or name.startswith("."):
        raise ValueError(f"model name {name!r}: use letters, digits, '-', '_' and '.'")
    weights_dir.mkdir(parents=True, exist_ok=True)
    target = weights_dir / f"{name}.pt"
    with tempfile.NamedTemporaryFile(dir=weights_dir, prefix=f".{target.name}.", delete=False) as handle:
        with source.open("rb") as original:
            shutil.copyfileobj(original, handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(handle.name, target)
    checksum_path(target).write_text(f"{digest}  {target.name}\n")
    return Registered(name, ModelKind(metadata.kind), target, digest)


def registered_models(weights_dir: Path) -> list[tuple[Registered, CheckpointMetadata]]:
    found = []
    for path in sorted(weights_dir.glob("*.pt")) if weights_dir.is_dir() else []:
        try:
            metadata, _ = load_checkpoint(path)
        except Exception:  # not one of ours (e.g. a torchvision ImageNet file): not listed
            continue
        found.append((Registered(path.stem, ModelKind(metadata.kind), path, sha256_of(path)), metadata))
    return found
