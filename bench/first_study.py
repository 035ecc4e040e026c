"""The first study's encoding in a fresh analysis process, with the encoders warmed up at start
(``worker.encode.warmup``, what ``cxr worker`` does before it says it is ready) and without, in the same invocation:
alternating pairs of fresh Python processes, each timing the encoding and writing (to memory) of RG1's SR, overlay SC
and GSPS once, then a second time.

    .venv/bin/python bench/first_study.py [--pairs 5]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def child(warm: bool) -> None:
    import io
    import time
    import warnings

    import pydicom
    from pydicom.data import get_testdata_file

    sys.path.insert(0, str(ROOT))
    from config.settings import Settings
    from models.baseline import BaselineDetector
    from models.imaging import decode_dataset
    from worker.encode.bundle import encode_study
    from worker.encode.inputs import AnalysedImage, EncodeContext
    from worker.encode.warmup import warm_up_encoders

    warnings.simplefilter("ignore")
    settings, detector = Settings(), BaselineDetector()
    if warm:
        warm_up_encoders(settings, detector.provenance)
    source = pydicom.dcmread(get_testdata_file("RG1_UNCR.dcm"))
    decoded = decode_dataset(source)
    image = AnalysedImage(source, decoded, detector.detect([decoded])[0])
    context = EncodeContext([image], detector.provenance, settings.equipment, settings.results, settings.urgency)
    times = []
    for _ in range(2):
        started = time.perf_counter()
        for encoded in encode_study(context):
            encoded.dataset.save_as(io.BytesIO(), enforce_file_format=True)
        times.append((time.perf_counter() - started) * 1000)
    print(*times)


def run(warm: bool) -> tuple[float, float]:
    mode = "warm" if warm else "cold"
    out = subprocess.run([sys.executable, __file__, "--child", mode], capture_output=True, text=True, check=True)
    first, second = (float(value) for value in out.stdout.split())
    return first, second


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=5)
    parser.add_argument("--child", choices=("warm", "cold"))
    arguments = parser.parse_args()
    if arguments.child:
        child(arguments.child == "warm")
        return
    warm, cold = [], []
    for _ in range(arguments.pairs):
        warm.append(run(True))
        cold.append(run(False))
    print(f"{'encoders':<10} {'1st study ms':>13} {'2nd study ms':>13}")
    for name, runs in (("warmed up", warm), ("cold", cold)):
        first, second = statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)
        print(f"{name:<10} {first:>13.0f} {second:>13.0f}")
    first_warm, first_cold = statistics.median(r[0] for r in warm), statistics.median(r[0] for r in cold)
    print(f"first study: {first_cold / first_warm:.2f}× faster warmed up ({first_cold - first_warm:.0f} ms saved)")


if __name__ == "__main__":
    main()
