"""The epoch loop both trainers share: AMP on CUDA, a resumable state file after every epoch, rich progress bars.

``run_dir/state.pt`` holds the model, the optimiser, the gradient scaler, the epochs done and their history (tensors
and plain data only); ``resume`` continues from it, so an interrupted run loses at most one epoch.
"""

from __future__ import annotations

import logging
import os
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from torch import nn

from models.device import resolve_device

logger = logging.getLogger(__name__)

STATE_FILE = "state.pt"


@dataclass(frozen=True)
class TrainOptions:
    epochs: int = 10
    batch_size: int = 16
    learning_rate: float = 1e-4
    weight_decay: float = 1e-4
    device: str = "auto"
    amp: bool = True
    """Mixed precision where the device is CUDA; ignored on the CPU."""
    seed: int = 0
    workers: int = 0
    """DataLoader processes. They persist across epochs, each keeping the decoded images it has seen (see
    ``PreparedImages``), so only the first epoch decodes."""
    resume: bool = False


@dataclass
class EpochRecord:
    epoch: int
    loss: float
    images_per_second: float
    validation: dict[str, float] = field(default_factory=dict)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


Step = Callable[[nn.Module, Any, torch.device], tuple[torch.Tensor, int]]
"""(model, batch, device) → (loss, images in the batch)."""


class Trainer:
    def __init__(self, model: nn.Module, options: TrainOptions, run_dir: Path) -> None:
        self.options, self.run_dir = options, run_dir
        self.device = resolve_device(options.device)
        self.model = model.to(self.device)
        self.optimizer = torch.optim.AdamW(
            [p for p in model.parameters() if p.requires_grad],
            lr=options.learning_rate,
            weight_decay=options.weight_decay,
        )
        self.amp = options.amp and self.device.type == "cuda"
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp)
        self.history: list[EpochRecord] = []
        run_dir.mkdir(parents=True, exist_ok=True)
        if options.resume:
            self._load_state()

    @property
    def state_path(self) -> Path:
        return self.run_dir / STATE_FILE

    def _load_state(self) -> None:
        if not self.state_path.is_file():
            raise FileNotFoundError(f"nothing to resume: {self.state_path} not found")
        state = torch.load(self.state_path, map_location=self.device, weights_only=True)
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scaler.load_state_dict(state["scaler"])
        self.history = [EpochRecord(**record) for record in state["history"]]
        logger.info("resuming after epoch %d", len(self.history))

    def _save_state(self) -> None:
        temporary = self.state_path.with_suffix(".tmp")
        torch.save(
            {
                "model": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "scaler": self.scaler.state_dict(),
                "history": [vars(r) for r in self.history],
            },
            temporary,
        )
        os.replace(temporary, self.state_path)

    def fit(
        self,
        batches: Callable[[], Iterable[Any]],
        steps: int,
        step: Step,
        validate: Callable[[], dict[str, float]] | None = None,
    ) -> list[EpochRecord]:
        """Train until ``options.epochs`` epochs are done (counting those resumed); ``steps`` batches per epoch."""
        columns = (
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            TextColumn("{task.fields[status]}"),
        )
        with Progress(*columns, transient=True) as progress:
            for epoch in range(len(self.history) + 1, self.options.epochs + 1):
                task = progress.add_task(f"epoch {epoch}/{self.options.epochs}", total=steps, status="")
                loss, rate = self._epoch(
                    batches(),
                    step,
                    lambda status: progress.update(task, advance=1, status=status),  # noqa: B023 (used in this epoch)
                )
                record = EpochRecord(epoch, loss, rate, validate() if validate else {})
                self.history.append(record)
                self._save_state()
                logger.info("epoch %d: loss %.4f, %.1f images/s %s", epoch, loss, rate, record.validation)
        return self.history

    def _epoch(self, batches: Iterable[Any], step: Step, advance: Callable[[str], None]) -> tuple[float, float]:
        self.model.train()
        total, images, started = 0.0, 0, time.perf_counter()
        for batch in batches:
            with torch.autocast(self.device.type, enabled=self.amp):
                loss, count = step(self.model, batch, self.device)
            self.optimizer.zero_grad(set_to_none=True)
            torch.autograd.backward(self.scaler.scale(loss))
            self.scaler.step(self.optimizer)
            self.scaler.update()
            total += float(loss.detach()) * count
            images += count
            advance(f"loss {total / max(images, 1):.4f}")
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        elapsed = time.perf_counter() - started
        return total / max(images, 1), images / elapsed if elapsed > 0 else 0.0
