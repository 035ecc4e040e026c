"""The SR's encoding time: ours (built around a stand-in root, ``worker.encode.sr._stand_in``) against highdicom's own
path (the content tree deep-copied and parsed again), in the same invocation, on the same analysed images.

Cases: RG1 (one image) and a two-image study, each with the baseline detector's findings. Both paths make the same
bytes apart from clock-read dates and times (``tests/worker/test_encode_sr_copy.py``).

    .venv/bin/python bench/encode_sr.py [--repeats 30]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import pydicom
from pydicom.data import get_testdata_file

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.helpers.encode_cases import analysed, context, second_view
from worker.encode import sr as sr_module
from worker.encode.sr import build_sr


def median_ms(build: Callable[[], object], repeats: int) -> float:
    build()  # warm: imports, code tables
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        build()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30)
    repeats = parser.parse_args().repeats
    rg1 = pydicom.dcmread(str(get_testdata_file("RG1_UNCR.dcm")))
    cases = {"RG1, one image": [rg1], "two-image study": [rg1, second_view(rg1)]}
    stand_in = sr_module._stand_in
    print(f"{'case':<18} {'ours ms':>8} {'highdicom ms':>13} {'ratio':>6}")
    for name, sources in cases.items():
        build = partial(build_sr, context(analysed(sources)))
        ours = median_ms(build, repeats)
        sr_module._stand_in = lambda root: root  # highdicom's own path
        try:
            theirs = median_ms(build, repeats)
        finally:
            sr_module._stand_in = stand_in
        print(f"{name:<18} {ours:>8.1f} {theirs:>13.1f} {theirs / ours:>5.2f}×")


if __name__ == "__main__":
    main()
