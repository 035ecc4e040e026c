"""Inference and preprocessing throughput for every backend, next to a peer run in the same invocation.

- Preprocessing: our decode (Modality/VOI LUT, MONOCHROME1) plus the letterbox, for RG1 uncompressed and JPEG 2000;
  the peer is pydicom's bare ``pixel_array`` decode of the same file.
- Inference: each backend's ``detect`` (preprocessing, model, localisation, mapping back) at several batch sizes;
  the peer is the same network's bare forward pass on a ready tensor (no preprocessing, no localisation). On CUDA
  the classifiers' bare pass (fp16, CUDA graphs) has its own peer: the plain PyTorch network (fp32 weights under
  fp16 autocast).

Weights are random (real architectures): speed does not depend on their values. No GPU: CPU figures only, on the
batch sizes that finish in minutes (``--full`` runs every size on the CPU too).

    .venv/bin/python bench/inference.py [--device auto|cpu|cuda] [--repeats 3] [--full] [--backend xrv:]...
                                        [--no-preprocessing]
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pydicom
import torch
from pydicom.data import get_testdata_file

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from models.baseline import BaselineDetector, BaselineParameters
from models.codes import XRV_LABELS
from models.device import image_batch, inference_dtype, resolve_device
from models.imaging import DecodedImage, decode_dataset
from models.preprocess import letterbox
from models.protocol import Detector, DetectorOptions
from models.registry import load_detector
from tests.helpers.weights import write_detector_checkpoint, write_xrv_weights

XRV_CODED = [str(label) for label in XRV_LABELS.values() if label is not None]
GPU_BATCHES = (1, 8, 32, 64)
FULL_SCALES = "baseline 0.1.0, all scales full"
CPU_BATCHES = {
    "baseline": (1, 8),
    FULL_SCALES: (1,),
    "xrv:densenet121-res224-all": (1, 8, 32, 64),
    "xrv:densenet121-res224-all +cam": (1, 8),
    "xrv:resnet50-res512-all": (1, 8),
    "torchvision:vindr-1024.pt": (1,),
}
NEGATIVE = 0.9
"""With random weights every label sits near 0.5: this raw threshold makes a label negative (no Grad-CAM)."""


def best_of(repeats: int, run: Callable[[], object]) -> float:
    """Seconds of the fastest of ``repeats`` runs (after one warm-up), synchronising CUDA."""
    run()
    times = []
    for _ in range(repeats):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        start = time.perf_counter()
        run()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return min(times)


def preprocessing(repeats: int) -> None:
    print("preprocessing (one image, best of runs)")
    print(f"  {'file':14} {'ours img/s':>11} {'pydicom img/s':>14} {'ours ÷ peer':>12}")
    for name in ("RG1_UNCR.dcm", "RG1_J2KR.dcm", "RG1_J2KI.dcm"):
        path = str(get_testdata_file(name))
        ours = best_of(repeats, lambda: letterbox(decode_dataset(pydicom.dcmread(path)).pixels, 224))  # noqa: B023 (called here)
        peer = best_of(repeats, lambda: pydicom.dcmread(path).pixel_array)  # noqa: B023 (called here)
        print(f"  {name:14} {1 / ours:11.1f} {1 / peer:14.1f} {peer / ours:12.2f}")


def bare_forward(detector: Detector, batch: int, device: torch.device) -> Callable[[], object] | None:
    """The network alone on a ready tensor of the size it takes, as the backend runs it: the peer of ``detect``.

    On CUDA the classifiers run an fp16 copy replayed from CUDA graphs on channels_last input (``models.device``),
    and the detector runs under fp16 autocast.
    """
    model = getattr(detector, "classifier", getattr(detector, "model", None))
    if model is None:
        return None
    if hasattr(detector, "resolution"):
        square = np.zeros((detector.resolution, detector.resolution), dtype=np.float32)
        tensor = image_batch([square] * batch, device).to(inference_dtype(device))
        return lambda: _serving(device, lambda: model(tensor), autocast=False)
    size = detector.metadata.input_size  # type: ignore[attr-defined]
    images = [torch.zeros(3, size, size, device=device) for _ in range(batch)]
    return lambda: _serving(device, lambda: model(images), autocast=True)


def eager_forward(detector: Detector, batch: int, device: torch.device) -> Callable[[], object] | None:
    """The peer of the CUDA graphs: the classifier as plain PyTorch serves it (the fp32 model under fp16 autocast,
    channels_last), which is how this project ran it before the graphs. None off CUDA or for the detector."""
    if device.type != "cuda" or not hasattr(detector, "classifier"):
        return None
    model = detector.model  # type: ignore[attr-defined]
    square = np.zeros((detector.resolution, detector.resolution), dtype=np.float32)  # type: ignore[attr-defined]
    tensor = image_batch([square] * batch, device)
    return lambda: _serving(device, lambda: model(tensor), autocast=True)


def _serving(device: torch.device, call: Callable[[], object], autocast: bool) -> object:
    with torch.no_grad(), torch.autocast(device.type, enabled=autocast and device.type == "cuda"):
        return call()


def inference(device: torch.device, repeats: int, full: bool, weights: Path, backends: list[str]) -> None:
    source = decode_dataset(pydicom.dcmread(str(get_testdata_file("RG1_UNCR.dcm"))))
    flipped = DecodedImage(np.ascontiguousarray(source.pixels[:, ::-1]), None)
    print(f"\ninference on {device} ({torch.get_num_threads()} CPU threads), RG1 {source.pixels.shape}")
    print("  xrv rows: every label negative (classification only); '+cam': one label positive, so one Grad-CAM")
    print("  'eager': the classifier network without CUDA graphs, fp32 weights under autocast (CUDA only)")
    print(
        f"  {'backend':32} {'batch':>5} {'img/s':>9} {'ms/img':>9} {'bare img/s':>11} {'detect ÷ bare':>14}"
        f" {'eager img/s':>12} {'bare ÷ eager':>13}"
    )
    for row, cpu_batches in CPU_BATCHES.items():
        if backends and not any(wanted in row for wanted in backends):
            continue
        name, _, cam = row.partition(" +")
        negative = dict.fromkeys(XRV_CODED, NEGATIVE)
        options = DetectorOptions(
            weights_dir=weights, device=str(device), thresholds={**negative, "Nodule": 1e-6} if cam else negative
        )
        detector: Detector = (
            BaselineDetector()
            if name == "baseline"
            else BaselineDetector(BaselineParameters(half_resolution_from_sigma=math.inf))  # 0.1.0's response
            if name == FULL_SCALES
            else load_detector(
                name, options if name.startswith("xrv") else DetectorOptions(weights_dir=weights, device=str(device))
            )
        )
        for batch in GPU_BATCHES if device.type == "cuda" or full else cpu_batches:
            images = [source if i % 2 == 0 else flipped for i in range(batch)]
            seconds = best_of(repeats, lambda: detector.detect(images))  # noqa: B023 (called here)
            forward = bare_forward(detector, batch, device)
            bare = best_of(repeats, forward) if forward is not None else None
            bare_text = f"{batch / bare:11.1f} {bare / seconds:14.2f}" if bare else f"{'–':>11} {'–':>14}"
            plain = eager_forward(detector, batch, device)
            eager = best_of(repeats, plain) if plain is not None else None
            eager_text = f" {batch / eager:12.1f} {eager / bare:13.2f}" if eager and bare else ""
            print(f"  {row:32} {batch:5d} {batch / seconds:9.1f} {1000 * seconds / batch:9.1f} {bare_text}{eager_text}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--full", action="store_true", help="every batch size on the CPU too")
    parser.add_argument("--backend", action="append", default=[], help="only rows containing this (repeatable)")
    parser.add_argument("--no-preprocessing", action="store_true", help="skip the preprocessing table")
    args = parser.parse_args()
    device = resolve_device(args.device)
    if not args.no_preprocessing:
        preprocessing(args.repeats)
    with tempfile.TemporaryDirectory() as directory:
        weights = Path(directory)
        write_xrv_weights("densenet121-res224-all", weights)
        write_xrv_weights("resnet50-res512-all", weights)
        write_detector_checkpoint(weights, "vindr-1024.pt", input_size=1024, default_threshold=0.5)
        inference(device, args.repeats, args.full, weights, args.backend)


if __name__ == "__main__":
    main()
