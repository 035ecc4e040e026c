"""The overlay Secondary Capture in each ``results.sc_compression`` encoding: encode time, file size and dciodvfy's
errors, each beside the uncompressed one (the peer) from the same invocation, on RG1 with the baseline's findings.

    .venv/bin/python bench/sc_encodings.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import pydicom
from pydicom.data import get_testdata_file
from pydicom.uid import RLELossless

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from config.settings import ResultsSettings
from db.models import ResultKind
from tests.helpers.encode_cases import analysed, context
from tests.helpers.peers import dciodvfy_errors
from worker.encode.bundle import EncodedObject
from worker.encode.sc import ENCODINGS, build_overlay_sc


def measure(choice: str, repeats: int, out: Path) -> tuple[float, int, int, bool]:
    """(median encode ms, file bytes, dciodvfy errors, whether the file is marked lossy)."""
    image = analysed([pydicom.dcmread(str(get_testdata_file("RG1_UNCR.dcm")))])[0]
    encode_context = context([image], results=ResultsSettings(sc_compression=choice))  # type: ignore[arg-type]
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        sc = build_overlay_sc(image, encode_context, 1)
        times.append((time.perf_counter() - started) * 1000)
    path = EncodedObject(ResultKind.SC, sc).write(out / choice)
    lossy = str(pydicom.dcmread(path, stop_before_pixels=True).get("LossyImageCompression", "00")) == "01"
    return statistics.median(times), path.stat().st_size, len(dciodvfy_errors(path)), lossy


def measure_rle(repeats: int, out: Path) -> tuple[float, int, int, bool]:
    """RLE Lossless, which issue 22 asked about and ``results.sc_compression`` does not offer: the uncompressed SC
    built, then RLE-compressed by pydicom (the encoder highdicom would call)."""
    image = analysed([pydicom.dcmread(str(get_testdata_file("RG1_UNCR.dcm")))])[0]
    encode_context = context([image])
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        sc = build_overlay_sc(image, encode_context, 1)
        sc.compress(RLELossless, encoding_plugin="pydicom")
        times.append((time.perf_counter() - started) * 1000)
    path = EncodedObject(ResultKind.SC, sc).write(out / "rle")
    return statistics.median(times), path.stat().st_size, len(dciodvfy_errors(path)), False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    repeats = parser.parse_args().repeats
    with tempfile.TemporaryDirectory() as folder:
        figures = {choice: measure(choice, repeats, Path(folder)) for choice in ENCODINGS}
        figures["rle*"] = measure_rle(repeats, Path(folder))
    plain_ms, plain_bytes, _, _ = figures["none"]
    print(f"{'encoding':<10} {'syntax':<40} {'encode ms':>9} {'MB':>6} {'size':>6} {'time':>6} {'errors':>6} lossy")
    for choice, (ms, size, errors, lossy) in figures.items():
        syntax = ENCODINGS[choice][0].name if choice in ENCODINGS else RLELossless.name
        print(
            f"{choice:<10} {syntax:<40} {ms:>9.0f} {size / 1e6:>6.2f} {size / plain_bytes:>5.2f}× "
            f"{ms / plain_ms:>5.2f}× {errors:>6} {'yes' if lossy else 'no'}"
        )
    print("* not offered by results.sc_compression: no smaller than uncompressed for an overlay (see the row)")


if __name__ == "__main__":
    main()
