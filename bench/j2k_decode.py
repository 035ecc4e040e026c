"""JPEG 2000 decoded at the detector's resolution (``models.j2k``) beside the full decode (the peer), both in the same
invocation: the whole ``decode_dataset`` step (read, decode, LUTs), median of the repeats, for RG1 in both JPEG 2000
syntaxes, with the baseline detector's 512-pixel view and a 224-pixel one (torchxrayvision's).

    .venv/bin/python bench/j2k_decode.py [--repeats 7]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import pydicom
from pydicom.data import get_testdata_file

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from models.imaging import decode_dataset


def median_ms(path: str, long_side: int | None, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        ds = pydicom.dcmread(path)  # read afresh: pydicom keeps a decoded array on the data set
        started = time.perf_counter()
        decode_dataset(ds, long_side)
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=7)
    arguments = parser.parse_args()
    print("| image | detector's long side | full decode ms (peer) | reduced decode ms | speed-up |")
    print("|---|---|---|---|---|")
    for name in ("RG1_J2KR.dcm", "RG1_J2KI.dcm"):
        path = str(get_testdata_file(name))
        median_ms(path, None, 1)  # warm the codecs
        for long_side in (512, 224):
            full = median_ms(path, None, arguments.repeats)
            reduced = median_ms(path, long_side, arguments.repeats)
            print(f"| {name} | {long_side} | {full:.0f} | {reduced:.0f} | {full / reduced:.2f}× |", flush=True)


if __name__ == "__main__":
    main()
