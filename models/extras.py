"""What the light install lacks. The baseline node needs no torch; the deep detectors, Grad-CAM, training and
evaluation come with the ``deep`` extra. A process that asks for one of them without it stops with the pip command
to run, never with a traceback from deep inside an import."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from contextlib import contextmanager

DEEP_MODULES = frozenset(
    {
        "torch",
        "torchvision",
        "torchxrayvision",
        "pytorch_grad_cam",
        "sklearn",
        "torchmetrics",
        "pycocotools",
        "matplotlib",
    }
)
INSTALL_HINT = "pip install 'cxr-pacs-worker[deep]' (from a clone: .venv/bin/pip install -e '.[deep]')"


class WeightsMissingError(FileNotFoundError):
    """The configured detector's weights are not where they must be placed; the message says what to do."""


class DeepExtraMissingError(RuntimeError):
    """A deep backend was asked for on the light install; the message names it and the pip command to run."""

    def __init__(self, what: str, missing: str) -> None:
        super().__init__(f"{what} needs the deep extra ({missing} is not installed): {INSTALL_HINT}")


def deep_installed() -> bool:
    return importlib.util.find_spec("torch") is not None


@contextmanager
def needs_deep_extra(what: str) -> Iterator[None]:
    """Turn the import error of a module the deep extra brings into ``DeepExtraMissingError``; others pass through."""
    try:
        yield
    except ModuleNotFoundError as exc:
        top = (exc.name or "").partition(".")[0]
        if top not in DEEP_MODULES:
            raise
        raise DeepExtraMissingError(what, top) from exc


def compute_device(setting: str) -> str:
    """The device a worker computes on, as its heartbeat reports it: without torch, always the CPU."""
    if not deep_installed():
        return "cpu"
    from models.device import resolve_device

    return str(resolve_device(setting))


def limit_compute_threads(threads: int) -> None:
    """Intra-op threads of the libraries detectors compute with (OpenCV, and torch where installed), for a process
    that shares the machine's cores with other analysis processes: each taking every core slows them all."""
    import cv2

    cv2.setNumThreads(threads)
    if deep_installed():
        import torch

        torch.set_num_threads(threads)
