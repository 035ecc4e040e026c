"""One C-STORE of a file to DCMTK storescp: sent as written (``dicom_node.scu``: the data set's bytes streamed from
disk) against read whole and encoded again (what the SCU did before, and still does for a peer that accepts only
another syntax), in the same invocation, alternating, over one association per send as a delivery opens.

Files: RG1 (7.2 MB CR) and the overlay SC the node makes of it (uncompressed RGB).

Then the requestor's reactor: the GSPS the node makes of RG1 (a few kB) stored ``--objects`` times over one
association, by the node's event-driven association (``dicom_node.reactor``) against pynetdicom's own, whose two
threads look at their queues every millisecond; wall and this process's CPU per C-STORE, alternating.

    .venv/bin/python bench/send.py [--sends 20] [--objects 200]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from unittest.mock import patch

import pydicom
from pydicom.data import get_testdata_file
from pynetdicom import AE

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from config.outputs import Destination
from db.models import ResultKind
from dicom_node import scu
from dicom_node.reactor import EventDrivenAE
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


def per_store_ms(destination: Destination, path: Path, objects: int, event_driven: bool) -> tuple[float, float]:
    """(wall ms, CPU ms of this process) per C-STORE of ``path``, ``objects`` times over one association."""
    with patch.object(scu, "EventDrivenAE", EventDrivenAE if event_driven else AE):
        wall, cpu = time.perf_counter(), time.process_time()
        outcomes = scu.send_files(destination, [path] * objects)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    assert all(o.ok for o in outcomes), outcomes[0].error
    return wall * 1000 / objects, cpu * 1000 / objects


def compare_reactors(destination: Destination, path: Path, objects: int, rounds: int = 5) -> None:
    runs: dict[bool, list[tuple[float, float]]] = {True: [], False: []}
    for _ in range(rounds):
        for event_driven in (True, False):
            runs[event_driven].append(per_store_ms(destination, path, objects, event_driven))
    print(f"\n{objects} C-STOREs of a {path.stat().st_size / 1e3:.0f} kB GSPS over one association, {rounds} rounds")
    print(f"{'requestor':<26} {'wall ms/store':>14} {'CPU ms/store':>13}")
    medians = {}
    for event_driven, label in ((True, "ours (event-driven)"), (False, "pynetdicom's")):
        wall = statistics.median(w for w, _ in runs[event_driven])
        cpu = statistics.median(c for _, c in runs[event_driven])
        medians[event_driven] = (wall, cpu)
        print(f"{label:<26} {wall:>14.2f} {cpu:>13.2f}")
    (ours_wall, ours_cpu), (their_wall, their_cpu) = medians[True], medians[False]
    print(f"{'ratio (theirs / ours)':<26} {their_wall / ours_wall:>13.2f}× {their_cpu / ours_cpu:>12.2f}×")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sends", type=int, default=20)
    parser.add_argument("--objects", type=int, default=200)
    arguments = parser.parse_args()
    sends = arguments.sends
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
            gsps = next(o for o in encode_study(context([image])) if o.kind is ResultKind.GSPS)
            compare_reactors(destination, gsps.write(work / "results"), arguments.objects)


if __name__ == "__main__":
    main()
