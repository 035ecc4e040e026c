"""One C-STORE of a file to DCMTK storescp: sent as written (``dicom_node.scu``: the data set's bytes streamed from
disk) against read whole and encoded again (what the SCU did before, and still does for a peer that accepts only
another syntax), in the same invocation, alternating, over one association per send as a delivery opens.

Files: RG1 (7.2 MB CR) and the overlay SC the node makes of it (uncompressed RGB).

    .venv/bin/python bench/send.py [--sends 20]
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

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from config.outputs import Destination
from db.models import ResultKind
from dicom_node import scu
from tests.helpers.encode_cases import analysed, context
from tests.helpers.peers import storescp
from worker.encode.bundle import encode_study


def send_ms(destination: Destination, path: Path, as_written: bool) -> float:
    chosen = scu._as_written
    scu._as_written = chosen if as_written else (lambda assoc, header: False)
    try:
        started = time.perf_counter()
        (outcome,) = scu.send_files(destination, [path])
        assert outcome.ok, outcome.error
        return (time.perf_counter() - started) * 1000
    finally:
        scu._as_written = chosen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sends", type=int, default=20)
    sends = parser.parse_args().sends
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        rg1 = Path(str(get_testdata_file("RG1_UNCR.dcm")))
        image = analysed([pydicom.dcmread(rg1)])[0]
        sc = next(o for o in encode_study(context([image])) if o.kind is ResultKind.SC)
        sc_path = sc.write(work / "results")
        files = {"RG1 CR, 7.2 MB": rg1, f"overlay SC, {sc_path.stat().st_size / 1e6:.1f} MB": sc_path}
        print(f"{'file':<22} {'as written ms':>14} {'re-encoded ms':>14} {'ratio':>6}")
        with storescp(work / "pacs") as port:
            destination = Destination(name="pacs", ae_title="PACS", host="127.0.0.1", port=port)
            for name, path in files.items():
                ours, theirs = [], []
                for _ in range(sends):
                    ours.append(send_ms(destination, path, True))
                    theirs.append(send_ms(destination, path, False))
                mine, peer = statistics.median(ours), statistics.median(theirs)
                print(f"{name:<22} {mine:>14.1f} {peer:>14.1f} {peer / mine:>5.2f}×")


if __name__ == "__main__":
    main()
