"""Ingest throughput: distinct copies of RG1 over 1 and over 4 concurrent associations, to our SCP and to its peers,
all in the same run and the same rounds.

Receivers:
- ours, ``cxr scp`` with ``scp.processes = 1`` and with one process per core (the default): each instance streamed to
  ``.incoming``, fsynced, renamed into place, the directory fsynced and its row committed (SQLite) before 0x0000;
- DCMTK storescp as installed (one association at a time; Nagle's algorithm left on, as Debian builds it);
- DCMTK storescp tuned: ``+B`` (bit-preserving writes), ``-pdu 131072`` and ``--fork`` (a process per association),
  as installed (Nagle's algorithm on: each response waits for the sender's delayed ACK) and with ``TCP_NODELAY=1``;
- Orthanc with its Debian defaults (storage and SQLite index on disk);
- for diagnosis only, where Debian's ``eatmydata`` is installed: ours with one process under it, every fsync (ours and
  SQLite's) made a no-op. It shows how much of the gap to the peers is the durable write; the node never runs so.

Neither peer fsyncs each instance. The sender is DCMTK storescu (``TCP_NODELAY=1``), one process per association, the
files shared out among them. Each round runs every receiver once, in turn. For ours the bench also prints the SCP's
CPU per instance (all its processes, from ``/proc``), which moves less with the machine's other load than the rates.

    .venv/bin/python bench/ingest.py [--count 40] [--rounds 3] [--receivers "ours, 1 process;Orthanc"]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import pydicom
from pydicom.data import get_testdata_file
from pydicom.uid import generate_uid

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.helpers.orthanc import orthanc
from tests.helpers.peers import ANSWERING_AT_ONCE, free_port, wait_for_port

ROOT = "1.2.826.0.1.3680043.8.498."
Receiver = Callable[[Path], AbstractContextManager[tuple[int, str, int | None]]]
"""Its port, AE title, and the process whose CPU (with its children's) is counted, where counted (ours)."""


def make_copies(directory: Path, count: int, tag: str) -> list[Path]:
    source = pydicom.dcmread(str(get_testdata_file("RG1_UNCR.dcm")))
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        source.StudyInstanceUID = generate_uid(prefix=ROOT, entropy_srcs=["bench-study", tag, str(i)])
        source.SOPInstanceUID = generate_uid(prefix=ROOT, entropy_srcs=["bench", tag, str(i)])
        source.file_meta.MediaStorageSOPInstanceUID = source.SOPInstanceUID
        path = directory / f"{i:03d}.dcm"
        source.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


def send(port: int, called_ae: str, files: list[Path], associations: int) -> float:
    """Seconds to store every file, over ``associations`` concurrent storescu processes."""
    shares = [files[i::associations] for i in range(associations)]
    started = time.perf_counter()
    senders = [
        subprocess.Popen(
            ["storescu", "-aec", called_ae, "127.0.0.1", str(port), *map(str, share)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=ANSWERING_AT_ONCE,
        )
        for share in shares
    ]
    for sender in senders:
        _, errors = sender.communicate(timeout=600)
        if sender.returncode != 0:
            raise RuntimeError(f"storescu failed: {errors.decode(errors='replace')[-500:]}")
    return time.perf_counter() - started


@contextmanager
def ours(work: Path, processes: int, durable: bool = True) -> Iterator[tuple[int, str, int | None]]:
    port = free_port()
    work.mkdir(parents=True, exist_ok=True)
    config = work / "cxr.toml"
    config.write_text(
        f'data_dir = "{work / "var"}"\n[scp]\nhost = "127.0.0.1"\nport = {port}\nprocesses = {processes}\n'
        "maximum_associations = 16\n"
        "completion_debounce_s = 3600\ncompletion_learn_senders = false\ncompletion_stability_s = 3600\n"
    )
    subprocess.run(
        [sys.executable, "-m", "cxr", "db", "upgrade", "--config", str(config)], check=True, capture_output=True
    )
    env = {**os.environ, "CXR_LOG_LEVEL": "WARNING"}
    process = subprocess.Popen(
        [*([] if durable else ["eatmydata"]), sys.executable, "-m", "cxr", "scp", "--config", str(config)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, timeout_s=60)
        time.sleep(2 if processes > 1 else 0)  # the other processes start listening
        yield port, "CXR_AI", process.pid
    finally:
        process.terminate()
        process.wait(timeout=30)


@contextmanager
def storescp(work: Path, tuned: bool, at_once: bool = False) -> Iterator[tuple[int, str, int | None]]:
    port = free_port()
    (work / "files").mkdir(parents=True, exist_ok=True)
    options = ["+B", "-pdu", "131072", "--fork"] if tuned else []
    process = subprocess.Popen(
        ["storescp", "-aet", "PEER", *options, "-od", str(work / "files"), str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=ANSWERING_AT_ONCE if at_once else None,
    )
    try:
        wait_for_port(port)
        yield port, "PEER", None
    finally:
        process.terminate()
        process.wait(timeout=30)


@contextmanager
def orthanc_peer(work: Path) -> Iterator[tuple[int, str, int | None]]:
    with orthanc(work, {}) as server:
        yield server.dicom_port, server.ae_title, None


def receivers(cores: int, chosen: list[str]) -> dict[str, Receiver]:
    """Every receiver, or those whose name starts with one of ``chosen``."""
    every: dict[str, Receiver] = {
        "ours, 1 process": lambda work: ours(work, 1),
        f"ours, {cores} processes": lambda work: ours(work, cores),
        "storescp": lambda work: storescp(work, tuned=False),
        "storescp tuned": lambda work: storescp(work, tuned=True),
        "storescp tuned, TCP_NODELAY": lambda work: storescp(work, tuned=True, at_once=True),
        "Orthanc": orthanc_peer,
    }
    if shutil.which("eatmydata"):
        every[NO_FSYNC] = lambda work: ours(work, 1, durable=False)
    return {name: r for name, r in every.items() if not chosen or any(name.startswith(c) for c in chosen)}


NO_FSYNC = "ours, 1 process, no fsync (eatmydata; diagnosis only)"


def cpu_seconds(pid: int) -> float:
    """User and system CPU of a process and its running descendants, from Linux's /proc."""
    total, pending = 0.0, [pid]
    while pending:
        current = pending.pop()
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except OSError:
            continue  # ended meanwhile
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        pending.extend(int(child) for child in children)
    return total


Figures = dict[tuple[str, int], list[float]]


def run(work: Path, count: int, rounds: int, chosen: list[str]) -> tuple[Figures, Figures]:
    """Receiver and association count → instances per second, and CPU ms per instance where counted; one figure per
    round."""
    rates: Figures = {}
    cpu: Figures = {}
    for round_ in range(rounds):
        for name, receiver in receivers(os.cpu_count() or 1, chosen).items():
            for associations in (1, 4):
                files = make_copies(work / "sent", count, f"{round_}-{name}-{associations}")
                where = work / f"{round_}-{name}-{associations}".replace(" ", "-").replace(",", "")
                with receiver(where) as (port, ae_title, pid):
                    used = cpu_seconds(pid) if pid is not None else 0.0
                    seconds = send(port, ae_title, files, associations)
                    if pid is not None:
                        cpu.setdefault((name, associations), []).append((cpu_seconds(pid) - used) * 1000 / count)
                rates.setdefault((name, associations), []).append(count / seconds)
    return rates, cpu


def table(figures: Figures) -> None:
    print("| receiver | 1 association | 4 associations |")
    print("|---|---|---|")
    for name in dict.fromkeys(name for name, _ in figures):
        cells = [
            f"{statistics.median(figures[(name, a)]):.1f} ({min(figures[(name, a)]):.1f}–{max(figures[(name, a)]):.1f})"
            for a in (1, 4)
        ]
        print(f"| {name} | {cells[0]} | {cells[1]} |")


def report(rates: Figures, cpu: Figures, count: int) -> None:
    print(f"ingest: {count} RG1_UNCR copies (7.2 MB each) per run; instances/s, median of the rounds (range)\n")
    table(rates)
    if cpu:
        print("\nour SCP's CPU (all its processes, user and system) per instance in ms; steadier than the rates on a")
        print("shared machine\n")
        table(cpu)
    median = {key: statistics.median(values) for key, values in rates.items()}
    cores = os.cpu_count() or 1
    ratios = [
        ("ours, 1 process / storescp tuned, 1 association (target ≥ 2)", ("ours, 1 process", 1), ("storescp tuned", 1)),
        (
            "ours, 1 process / storescp tuned with TCP_NODELAY, 1 association",
            ("ours, 1 process", 1),
            ("storescp tuned, TCP_NODELAY", 1),
        ),
        (
            f"ours, {cores} processes / Orthanc, 4 associations (target ≥ 1.5)",
            (f"ours, {cores} processes", 4),
            ("Orthanc", 4),
        ),
        (
            f"ours, {cores} processes / 1 process, 4 associations",
            (f"ours, {cores} processes", 4),
            ("ours, 1 process", 4),
        ),
        ("ours without fsync / ours, 1 association", (NO_FSYNC, 1), ("ours, 1 process", 1)),
        (
            "ours without fsync / storescp tuned with TCP_NODELAY, 1 association",
            (NO_FSYNC, 1),
            ("storescp tuned, TCP_NODELAY", 1),
        ),
        ("ours without fsync / Orthanc, 4 associations", (NO_FSYNC, 4), ("Orthanc", 4)),
    ]
    print()
    for what, ours_key, peer_key in ratios:
        if ours_key in median and peer_key in median:
            print(f"{what}: {median[ours_key] / median[peer_key]:.2f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--receivers", default="", help="';'-separated name prefixes of the receivers to run")
    arguments = parser.parse_args()
    chosen = [name.strip() for name in arguments.receivers.split(";") if name.strip()]
    with tempfile.TemporaryDirectory(prefix="cxr-bench-") as folder:
        report(*run(Path(folder), arguments.count, arguments.rounds, chosen), arguments.count)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
