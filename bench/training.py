"""Classifier training throughput (images/s) through ``cxr train``'s pipeline, next to a bare training loop.

Ours: ``train_classifier`` on the synthetic 40-image set (tests/helpers/synthetic.py) at the given size:
decode and letterbox (cached after the first epoch), augmentation, the loss with class weights, AMP on CUDA, and the
per-epoch validation and state file. The peer, in the same invocation: the same network, optimiser and AMP setting
on random tensors already on the device, so the ratio is what our data path and bookkeeping cost.

    .venv/bin/python bench/training.py [--device auto|cpu|cuda] [--architecture densenet121] [--input-size 224]
                                       [--batch-size 16] [--epochs 3] [--images 40]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from models.architectures import build_classifier
from models.checkpoint import load_checkpoint
from models.datasets import read_dataset
from models.device import resolve_device
from models.training.classifier import ClassifierRecipe, train_classifier
from models.training.loop import TrainOptions
from tests.helpers.synthetic import make_images, write_layout


def bare_loop(architecture: str, size: int, batch: int, steps: int, device: torch.device) -> float:
    """Images/s of forward, loss, backward and step on ready tensors, AMP as ours uses it."""
    model = build_classifier(architecture, 1).to(device).train()
    optimiser = torch.optim.AdamW(model.parameters(), lr=1e-4)
    amp = device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=amp)
    images = torch.rand(batch, 1, size, size, device=device)
    targets = torch.randint(0, 2, (batch, 1), device=device).float()
    loss_function = torch.nn.BCEWithLogitsLoss()

    def step() -> None:
        with torch.autocast(device.type, enabled=amp):
            loss = loss_function(model(images).float(), targets)
        optimiser.zero_grad(set_to_none=True)
        torch.autograd.backward(scaler.scale(loss))
        scaler.step(optimiser)
        scaler.update()

    step()  # warm-up: cuDNN autotuning, allocator
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return batch * steps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--architecture", default="densenet121")
    parser.add_argument("--input-size", type=int, default=224)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--images", type=int, default=40)
    parser.add_argument("--workers", type=int, default=0, help="DataLoader processes (0: in the training process)")
    arguments = parser.parse_args()
    device = resolve_device(arguments.device)
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        data = write_layout("pneumonia", root / "data", make_images(arguments.images))
        recipe = ClassifierRecipe(arguments.architecture, "scratch", arguments.input_size)
        options = TrainOptions(
            epochs=arguments.epochs, batch_size=arguments.batch_size, device=str(device), workers=arguments.workers
        )
        started = time.perf_counter()
        path = train_classifier(read_dataset("pneumonia", data), recipe, options, root / "run", root)
        wall = time.perf_counter() - started
        history = load_checkpoint(path)[0].training["history"]
    rates = [record["images_per_second"] for record in history]
    steady = max(rates[1:] or rates)  # the first epoch also decodes every image once
    bare = bare_loop(arguments.architecture, arguments.input_size, arguments.batch_size, 10, device)
    amp = "AMP fp16" if device.type == "cuda" else "fp32"
    print(
        f"device {device} ({torch.cuda.get_device_name(device) if device.type == 'cuda' else 'CPU'}), "
        f"{arguments.architecture} at {arguments.input_size} px, batch {arguments.batch_size}, {amp}, "
        f"{arguments.images} images, {arguments.workers} loader workers"
    )
    print(f"ours, per epoch (img/s): {', '.join(f'{r:.1f}' for r in rates)}; whole run {wall:.1f} s")
    print("| ours img/s (best epoch after the first) | bare loop img/s | ours ÷ bare |")
    print(f"| {steady:.1f} | {bare:.1f} | {steady / bare:.2f} |")


if __name__ == "__main__":
    main()
