"""What a job pays for an image another analysis worker analysed early (``worker.shared_findings``: the entry read
back from the spool) against what it pays without the entry (the image read, decoded at the detector's resolution
as ``worker.reduced_decode`` does, and run through the detector), in the same invocation, alternating.

Files: RG1 uncompressed (7.2 MB CR) and RG1_J2KR (lossless JPEG 2000). Baseline detector, on the CPU.

    .venv/bin/python bench/shared_findings.py [--rounds 10]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from pydicom.data import get_testdata_file

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from models.imaging import decode_dataset, read_dataset
from models.protocol import DetectorOptions, working_long_side
from models.registry import load_detector
from worker.shared_findings import SharedFindings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    rounds = parser.parse_args().rounds
    with tempfile.TemporaryDirectory() as folder:
        options = DetectorOptions(weights_dir=Path(folder), device="cpu", thresholds={}, thresholds_set=None)
        detector = load_detector("baseline", options)
        shared = SharedFindings(Path(folder) / "early", budget_bytes=2**30)
        side = working_long_side(detector)
        header = f"{'file':<10} {'entry taken ms':>15} {'analysed ms':>12} {'saved':>7} {'entry MB':>9}"
        print(f"{header} {'written ms':>11}")
        for name in ("RG1_UNCR.dcm", "RG1_J2KR.dcm"):
            path = Path(str(get_testdata_file(name)))
            taken, analysed, written, size = [], [], [], 0
            for n in range(rounds):
                started = time.perf_counter()
                decoded = decode_dataset(read_dataset(path), side)
                result = detector.detect([decoded])[0]
                middle = time.perf_counter()
                shared.save((name, n), result, decoded)
                saved = time.perf_counter()
                size = shared.path((name, n)).stat().st_size
                assert shared.take((name, n)) is not None
                analysed.append((middle - started) * 1000)
                written.append((saved - middle) * 1000)
                taken.append((time.perf_counter() - saved) * 1000)
            mine, peer = statistics.median(taken), statistics.median(analysed)
            print(
                f"{name[:-4]:<10} {mine:>15.1f} {peer:>12.1f} {peer / mine:>6.1f}× {size / 2**20:>9.1f}"
                f" {statistics.median(written):>11.1f}"
            )


if __name__ == "__main__":
    main()
