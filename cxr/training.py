"""``cxr train classifier|detector``, ``cxr evaluate`` and ``cxr model register|list``: the ML engineer's commands.

Settings give the weights folder (the ImageNet and torchxrayvision starting files lie there, and registered models
go there) and the device; everything else is an option with a default a site can start from.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from config.settings import Settings
from cxr.startup import ConfigOption, console, load_detector_or_exit, load_settings, require_deep_extra

if TYPE_CHECKING:
    from models.datasets.base import LabelledSet
    from models.training.augment import Augmentation
    from models.training.loop import TrainOptions

logger = logging.getLogger("cxr")

train_app = typer.Typer(no_args_is_help=True, help="Train a classifier or a detector on a local dataset.")
model_app = typer.Typer(no_args_is_help=True, help="Make trained models available to the workers.")

Layout = Annotated[str, typer.Option(help="nih, vindr, pneumonia, covid, or csv.")]
Data = Annotated[Path, typer.Option(help="The dataset's folder (for csv: the CSV file).", exists=True)]
VindrBoxes = Annotated[
    str,
    typer.Option(
        help="VinDr-CXR's several readers: fuse (average overlapping boxes), all, or one radiologist (e.g. R9)."
    ),
]
Out = Annotated[Path, typer.Option(help="Run folder: state.pt (for --resume) and the exported model.pt.")]
Epochs = Annotated[int, typer.Option(min=0, help="Epochs in all (0 exports the initial model, for comparison).")]
BatchSize = Annotated[int, typer.Option(min=1)]
LearningRate = Annotated[float, typer.Option(min=0.0)]
Device = Annotated[str | None, typer.Option(help="auto, cpu, cuda, cuda:N (default: the settings').")]
Seed = Annotated[int, typer.Option(help="Seeds the split, the initial weights and the augmentation.")]
Resume = Annotated[bool, typer.Option(help="Continue from the run folder's state.pt.")]
Workers = Annotated[int, typer.Option(min=0, help="DataLoader worker processes.")]
Rotation = Annotated[float, typer.Option(min=0.0, help="Random rotation, ± degrees.")]
CropScale = Annotated[float, typer.Option(min=0.1, max=1.0, help="Random crop keeps at least this area fraction.")]
Flip = Annotated[
    str, typer.Option(help="Horizontal flips: auto (only without lateralised findings such as cardiomegaly), on, off.")
]
Version = Annotated[str, typer.Option(help="The model version every result object will carry.")]


def _dataset(layout: str, data: Path, vindr_boxes: str, seed: int) -> LabelledSet:
    from models.datasets import DatasetLayoutError, read_dataset

    try:
        return read_dataset(layout, data, vindr_boxes, seed)
    except (DatasetLayoutError, ValueError) as exc:
        console.print(f"[red]dataset not read:[/red] {exc}", soft_wrap=True)
        raise typer.Exit(2) from exc


def _options(
    settings: Settings,
    epochs: int,
    batch_size: int,
    learning_rate: float,
    device: str | None,
    seed: int,
    resume: bool,
    workers: int,
) -> TrainOptions:
    from models.training.loop import TrainOptions

    return TrainOptions(
        epochs=epochs,
        batch_size=batch_size,
        learning_rate=learning_rate,
        device=device or settings.worker.device,
        seed=seed,
        workers=workers,
        resume=resume,
    )


def _augmentation(rotation: float, crop_scale: float, flip: str, dataset: LabelledSet) -> Augmentation:
    from models.training.augment import Augmentation, flip_allowed

    if flip not in ("auto", "on", "off"):
        raise typer.BadParameter(f"--hflip takes auto, on or off, not {flip!r}")
    allowed = flip_allowed(dataset.labels, dataset.codes)
    if flip == "on" and not allowed:
        console.print("[yellow]--hflip on with lateralised findings: a flip changes what they mean[/yellow]")
    return Augmentation(
        rotation_degrees=rotation, crop_scale=crop_scale, horizontal_flip=flip == "on" or (flip == "auto" and allowed)
    )


def _trained(train: Callable[[], Path]) -> None:
    """Run a trainer; a missing starting file, a bad option or an unusable split stops it with the reason."""
    from models.checkpoint import WeightsMissingError, load_checkpoint, sha256_of

    try:
        path = train()
    except (WeightsMissingError, FileNotFoundError, ValueError) as exc:
        console.print(f"[red]training stopped:[/red] {exc}", soft_wrap=True)
        raise typer.Exit(2) from exc
    metadata, _ = load_checkpoint(path)
    console.print(f"exported {path} (sha256 {sha256_of(path)})")
    console.print(f"validation: {metadata.metrics or 'no metric defined on this split'}")
    console.print(f"next: cxr model register {path} --name <name>")


@train_app.command("classifier")
def train_classifier_command(
    layout: Layout,
    data: Data,
    out: Out,
    architecture: Annotated[str, typer.Option(help="densenet121, resnet18 or resnet50 (torchvision).")] = "densenet121",
    init: Annotated[str, typer.Option(help="imagenet or xrv (files in the weights folder), or scratch.")] = "imagenet",
    input_size: Annotated[int, typer.Option(min=32)] = 224,
    balance: Annotated[str, typer.Option(help="weighted-loss, sampler or none.")] = "weighted-loss",
    target_sensitivity: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="The two-stage gate's sensitivity on validation.")
    ] = 0.95,
    epochs: Epochs = 10,
    batch_size: BatchSize = 16,
    learning_rate: LearningRate = 1e-4,
    device: Device = None,
    seed: Seed = 0,
    resume: Resume = False,
    workers: Workers = 0,
    rotation: Rotation = 7.0,
    crop_scale: CropScale = 0.85,
    hflip: Flip = "auto",
    vindr_boxes: VindrBoxes = "fuse",
    version: Version = "1",
    config: ConfigOption = None,
) -> None:
    """Train a multi-label (or binary) classifier; export it with F1-best thresholds and the two-stage gate."""
    require_deep_extra("cxr train classifier")
    from models.training.classifier import BALANCING, ClassifierRecipe, train_classifier

    settings = load_settings(config, "train")
    if balance not in BALANCING:
        raise typer.BadParameter(f"--balance takes {', '.join(BALANCING)}")
    dataset = _dataset(layout, data, vindr_boxes, seed)
    recipe = ClassifierRecipe(
        architecture,
        init,
        input_size,
        balance,
        target_sensitivity,
        _augmentation(rotation, crop_scale, hflip, dataset),
        version,
    )
    options = _options(settings, epochs, batch_size, learning_rate, device, seed, resume, workers)
    _trained(lambda: train_classifier(dataset, recipe, options, out, settings.weights_dir))


@train_app.command("detector")
def train_detector_command(
    layout: Layout,
    data: Data,
    out: Out,
    architecture: Annotated[
        str,
        typer.Option(
            help="fasterrcnn_resnet50_fpn_v2, retinanet_resnet50_fpn_v2, "
            "fasterrcnn_mobilenet_v3_large_fpn, fasterrcnn_compact."
        ),
    ] = "fasterrcnn_resnet50_fpn_v2",
    init: Annotated[
        str, typer.Option(help="imagenet (a ResNet50 file in the weights folder) or scratch.")
    ] = "imagenet",
    input_size: Annotated[int, typer.Option(min=64)] = 1024,
    epochs: Epochs = 20,
    batch_size: BatchSize = 4,
    learning_rate: LearningRate = 1e-4,
    device: Device = None,
    seed: Seed = 0,
    resume: Resume = False,
    workers: Workers = 0,
    rotation: Rotation = 7.0,
    crop_scale: CropScale = 0.85,
    hflip: Flip = "auto",
    vindr_boxes: VindrBoxes = "fuse",
    version: Version = "1",
    config: ConfigOption = None,
) -> None:
    """Train a box detector; images without boxes ("No finding") are its negative examples."""
    require_deep_extra("cxr train detector")
    from models.training.detector import DetectorRecipe, train_detector

    settings = load_settings(config, "train")
    dataset = _dataset(layout, data, vindr_boxes, seed)
    recipe = DetectorRecipe(
        architecture, init, input_size, _augmentation(rotation, crop_scale, hflip, dataset), version
    )
    options = _options(settings, epochs, batch_size, learning_rate, device, seed, resume, workers)
    _trained(lambda: train_detector(dataset, recipe, options, out, settings.weights_dir))


def evaluate_command(
    detector: Annotated[
        str,
        typer.Option(
            help="Any registered detector: baseline, xrv:…, classifier:<name>, torchvision:<name>, two-stage:<a>+<b>."
        ),
    ],
    layout: Layout,
    data: Data,
    split: Annotated[str, typer.Option(help="test, validation, train, or all.")] = "test",
    out: Annotated[Path | None, typer.Option(help="Results folder (default results/<date>-<detector>).")] = None,
    baselines: Annotated[bool, typer.Option(help="Also fit logistic regression and a random forest.")] = True,
    device: Device = None,
    seed: Seed = 0,
    vindr_boxes: VindrBoxes = "fuse",
    config: ConfigOption = None,
) -> None:
    """Evaluate a detector on a labelled split: metrics.json, ROC/PR curves, confusion matrix, overlays, report.md."""
    require_deep_extra("cxr evaluate")
    from dataclasses import replace

    from models.datasets import Split
    from models.evaluation.plots import slug
    from models.evaluation.report import evaluate
    from models.registry import load_detector
    from worker.context import detector_options

    settings = load_settings(config, "evaluate")
    if split not in ("all", *[s.value for s in Split]):
        raise typer.BadParameter(f"--split takes test, validation, train or all, not {split!r}")
    dataset = _dataset(layout, data, vindr_boxes, seed)
    options = replace(detector_options(settings), device=device or settings.worker.device)
    loaded = load_detector_or_exit(lambda: load_detector(detector, options))
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%S")
    folder = out or Path("results") / f"{stamp}-{slug(detector)}"
    try:
        metrics = evaluate(loaded, dataset, None if split == "all" else Split(split), folder, baselines, seed)
    except ValueError as exc:
        console.print(f"[red]evaluation stopped:[/red] {exc}", soft_wrap=True)
        raise typer.Exit(2) from exc
    macro = metrics["classification"]["average"]["macro"]
    console.print(
        f"{metrics['images']} images: macro AUROC {macro['auroc']}, macro F1 {macro['f1']:.3f}"
        + (f", mAP@0.5 {metrics['detection']['map_50']:.3f}" if "detection" in metrics else "")
    )
    console.print(f"→ {folder / 'metrics.json'}, {folder / 'report.md'}")


@model_app.command("register")
def register_command(
    path: Annotated[Path, typer.Argument(help="A model.pt exported by cxr train.", exists=True, dir_okay=False)],
    name: Annotated[str | None, typer.Option(help="The name workers load it by (default: the file's stem).")] = None,
    config: ConfigOption = None,
) -> None:
    """Check a checkpoint (sha256, format, codes) and copy it into the weights folder as <name>.pt."""
    require_deep_extra("cxr model register")
    from models.checkpoint import ChecksumMismatchError, register
    from models.registry import load_detector
    from worker.context import detector_options

    settings = load_settings(config, "model")
    try:
        registered = register(path, settings.weights_dir, name)
    except (ChecksumMismatchError, ValueError) as exc:
        console.print(f"[red]not registered:[/red] {exc}", soft_wrap=True)
        raise typer.Exit(2) from exc
    from dataclasses import replace

    load_detector_or_exit(
        lambda: load_detector(registered.detector_name, replace(detector_options(settings), device="cpu"))
    )
    console.print(f"registered {registered.path} (sha256 {registered.sha256})")
    console.print(f'set detector = "{registered.detector_name}" in the workers\' configuration')


@model_app.command("list")
def list_command(config: ConfigOption = None) -> None:
    """The models registered in the weights folder, with what they were trained on."""
    require_deep_extra("cxr model list")
    from models.checkpoint import registered_models

    settings = load_settings(config, "model")
    table = Table("detector", "version", "labels", "trained on", "validation", "sha256")
    for registered, metadata in registered_models(settings.weights_dir):
        table.add_row(
            registered.detector_name,
            metadata.version,
            ", ".join(metadata.labels),
            str(metadata.training.get("dataset", "–")),
            ", ".join(f"{k} {float(v):.3f}" for k, v in metadata.metrics.items()),
            registered.sha256[:16],
        )
    console.print(table)
