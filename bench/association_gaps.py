"""How senders split a study across associations, and how long they leave between them: the evidence behind the
default ``scp.completion_debounce_s`` (docs/deploy.md, "When a study is complete").

A study of three images (RG1 copies) goes to a recording SCP from each sender; the SCP timestamps each association's
request and release. The gap is from one association's release to the next one's request, the window a debounce
must span for the study to become one job rather than a job and a follow-up that supersedes it.

Senders: DCMTK storescu once per file (a forwarding script), one pynetdicom association per image (a modality that
sends each image as it is acquired), storescu with the whole study (one association), and Orthanc sending the study
to a modality (a PACS's forward).

    .venv/bin/python bench/association_gaps.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pydicom
from pydicom.data import get_testdata_file
from pynetdicom import AE, ALL_TRANSFER_SYNTAXES, AllStoragePresentationContexts, evt
from pynetdicom.events import Event

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.helpers.encode_cases import derived_uid
from tests.helpers.flow import write_copies
from tests.helpers.orthanc import orthanc
from tests.helpers.peers import ANSWERING_AT_ONCE, free_port

Sender = Callable[[int, list[Path]], None]


@contextmanager
def recording_scp() -> Iterator[tuple[int, list[tuple[str, float]]]]:
    """Yields the port and a list of ("requested" | "released", monotonic time)."""
    ae = AE(ae_title="CXR_AI")
    for context in AllStoragePresentationContexts:
        ae.add_supported_context(context.abstract_syntax, ALL_TRANSFER_SYNTAXES)
    events: list[tuple[str, float]] = []
    lock = threading.Lock()

    def note(kind: str) -> Callable[[Event], None]:
        def handler(event: Event) -> None:
            with lock:
                events.append((kind, time.monotonic()))

        return handler

    port = free_port()
    handlers = [
        (evt.EVT_REQUESTED, note("requested")),
        (evt.EVT_RELEASED, note("released")),
        (evt.EVT_C_STORE, lambda event: 0x0000),
    ]
    server = ae.start_server(("127.0.0.1", port), block=False, evt_handlers=handlers)
    try:
        yield port, events
    finally:
        server.shutdown()


def storescu_per_file(port: int, files: list[Path]) -> None:
    for path in files:
        subprocess.run(
            ["storescu", "-aec", "CXR_AI", "127.0.0.1", str(port), str(path)], check=True, env=ANSWERING_AT_ONCE
        )


def storescu_study(port: int, files: list[Path]) -> None:
    subprocess.run(
        ["storescu", "-aec", "CXR_AI", "127.0.0.1", str(port), *map(str, files)], check=True, env=ANSWERING_AT_ONCE
    )


def pynetdicom_per_image(port: int, files: list[Path]) -> None:
    for path in files:
        ds = pydicom.dcmread(path)
        ae = AE(ae_title="MODALITY")
        ae.add_requested_context(ds.SOPClassUID, ds.file_meta.TransferSyntaxUID)
        association = ae.associate("127.0.0.1", port, ae_title="CXR_AI")
        association.send_c_store(ds)
        association.release()


def gaps(events: list[tuple[str, float]]) -> tuple[int, list[float]]:
    """(associations, the gaps in seconds between one's release and the next one's request)."""
    ordered = sorted(events, key=lambda e: e[1])
    found, released = [], None
    for kind, at in ordered:
        if kind == "released":
            released = at
        elif released is not None:
            found.append(at - released)
            released = None
    return sum(1 for kind, _ in ordered if kind == "requested"), found


def measure(send: Sender, rounds: int, folder: Path) -> tuple[int, list[float]]:
    source = pydicom.dcmread(str(get_testdata_file("RG1_UNCR.dcm")))
    counts, all_gaps = [], []
    for round_ in range(rounds):
        tag = f"gaps-{send.__name__}-{round_}"
        files = write_copies(source, folder / tag, 3, tag, study_uid=derived_uid(tag, "study"))
        with recording_scp() as (port, events):
            send(port, files)
            time.sleep(0.3)
            count, found = gaps(events)
        counts.append(count)
        all_gaps += found
    return max(counts), all_gaps


def orthanc_sender(folder: Path) -> Iterator[Sender]:
    """Orthanc holding the study, asked to send it to the modality at ``port`` (its REST ``/modalities/…/store``)."""

    def send(port: int, files: list[Path]) -> None:
        with orthanc(folder / f"orthanc-{port}", {"cxr": ("CXR_AI", "127.0.0.1", port)}) as pacs:
            study = ""
            for path in files:
                study = pacs.post("/instances", path.read_bytes(), "application/dicom")["ParentStudy"]
            pacs.post("/modalities/cxr/store", json.dumps({"Resources": [study], "Synchronous": True}).encode())

    send.__name__ = "orthanc_study"
    yield send


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    arguments = parser.parse_args()
    print("| sender | associations per 3-image study | gaps measured | median gap ms | longest gap ms |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as folder:
        senders: list[Sender] = [storescu_per_file, pynetdicom_per_image, storescu_study]
        senders += list(orthanc_sender(Path(folder)))
        for send in senders:
            count, found = measure(send, arguments.rounds, Path(folder))
            median = f"{statistics.median(found) * 1000:.1f}" if found else "—"
            longest = f"{max(found) * 1000:.1f}" if found else "—"
            print(f"| {send.__name__} | {count} | {len(found)} | {median} | {longest} |", flush=True)


if __name__ == "__main__":
    main()
