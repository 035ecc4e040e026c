"""JPEG 2000 decoded at the detector's resolution (``models.j2k``) beside the full decode (the peer), both in the same
invocation: the whole ``decode_dataset`` step (read, decode, LUTs), median of the repeats, for RG1 in both JPEG 2000
syntaxes, with the baseline detector's 512-pixel view and a 224-pixel one (torchxrayvision's).

Where torch sees a CUDA GPU and nvImageCodec starts on it (``models.j2k_gpu``, the ``gpu`` extra), a second table
puts the GPU's full decode (the worker's choice there) beside both CPU decodes of the same run.

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
from models.imaging import StoredValues, decode_dataset
from models.j2k_gpu import gpu_decoder


def median_ms(path: str, long_side: int | None, repeats: int, accelerated: StoredValues | None = None) -> float:
    times = []
    for _ in range(repeats):
        ds = pydicom.dcmread(path)  # read afresh: pydicom keeps a decoded array on the data set
        started = time.perf_counter()
        decode_dataset(ds, long_side, accelerated)
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def on_the_gpu(repeats: int) -> None:
    import torch

    decoder = gpu_decoder(0) if torch.cuda.is_available() else None
    if decoder is None:
        print("\nno CUDA GPU with nvImageCodec here: the GPU decode is not measured")
        return
    print(f"\nOn {torch.cuda.get_device_name(0)}: the whole step with the decode on the GPU (nvImageCodec), in full\n")
    print("| image | CPU full ms (peer) | CPU reduced to 512 ms (peer) | GPU full ms | vs full | vs reduced |")
    print("|---|---|---|---|---|---|")
    for name in ("RG1_J2KR.dcm", "RG1_J2KI.dcm"):
        path = str(get_testdata_file(name))
        median_ms(path, None, 2, decoder)  # the decoder's first use sets up its streams and buffers
        full, reduced = median_ms(path, None, repeats), median_ms(path, 512, repeats)
        gpu = median_ms(path, None, repeats, decoder)
        ratios = f"{full / gpu:.1f}× | {reduced / gpu:.1f}×"
        print(f"| {name} | {full:.0f} | {reduced:.0f} | {gpu:.1f} | {ratios} |", flush=True)


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
    on_the_gpu(arguments.repeats)


if __name__ == "__main__":
    main()
