"""Ingest throughput: 40 distinct copies of RG1 over one association, to our SCP and to DCMTK storescp, same run.

Our SCP does the durable path (temp file, fsync, atomic rename, directory fsync, committed SQLite row) before each
0x0000; storescp writes files without fsync. The same sender (DCMTK storescu, one association) feeds both.

    .venv/bin/python bench/ingest.py [--count 40] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pydicom
from pydicom.data import get_testdata_file
from pydicom.uid import generate_uid

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.helpers.peers import free_port, wait_for_port

ROOT = "1.2.826.0.1.3680043.8.498."


def make_copies(directory: Path, count: int, tag: str) -> list[Path]:
    source = pydicom.dcmread(str(get_testdata_file("RG1_UNCR.dcm")))
    study = generate_uid(prefix=ROOT, entropy_srcs=["bench-study", tag])
    paths = []
    for i in range(count):
        source.StudyInstanceUID = study
        source.SOPInstanceUID = generate_uid(prefix=ROOT, entropy_srcs=["bench", tag, str(i)])
        source.file_meta.MediaStorageSOPInstanceUID = source.SOPInstanceUID
        path = directory / f"{i:03d}.dcm"
        source.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


def send(port: int, called_ae: str, files: list[Path]) -> float:
    start = time.perf_counter()
    result = subprocess.run(
        ["storescu", "-aec", called_ae, "127.0.0.1", str(port), *map(str, files)], capture_output=True, text=True
    )
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        raise RuntimeError(f"storescu failed: {result.stderr[-500:]}")
    return elapsed


def rss_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="cxr-bench-"))
    try:
        return run(work, args.count, args.rounds)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run(work: Path, count: int, rounds: int) -> int:
    ours_port, peer_port = free_port(), free_port()
    config = work / "cxr.toml"
    config.write_text(
        f'data_dir = "{work / "var"}"\n[scp]\nhost = "127.0.0.1"\nport = {ours_port}\n'
        "completion_debounce_s = 3600\ncompletion_learn_senders = false\ncompletion_stability_s = 3600\n"
    )
    subprocess.run(
        [sys.executable, "-m", "cxr", "db", "upgrade", "--config", str(config)], check=True, capture_output=True
    )
    env = {**os.environ, "CXR_LOG_LEVEL": "WARNING"}
    ours = subprocess.Popen(
        [sys.executable, "-m", "cxr", "scp", "--config", str(config)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    (work / "peer").mkdir()
    peer = subprocess.Popen(
        ["storescp", "-aet", "PEER", "-od", str(work / "peer"), str(peer_port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(ours_port)
        wait_for_port(peer_port)
        rows = []
        for r in range(rounds):
            batch = work / f"batch{r}"
            batch.mkdir()
            files = make_copies(batch, count, f"round{r}")
            megabytes = sum(p.stat().st_size for p in files) / 1e6
            peer_s = send(peer_port, "PEER", files)
            before = rss_kib(ours.pid, "VmRSS")
            ours_s = send(ours_port, "CXR_AI", files)
            after = rss_kib(ours.pid, "VmRSS")
            rows.append((count / ours_s, count / peer_s, megabytes / ours_s, megabytes / peer_s, before, after))
            shutil.rmtree(batch)
        report(rows, count, rss_kib(ours.pid, "VmHWM"))
    finally:
        for process in (ours, peer):
            process.terminate()
            process.wait(timeout=30)
    return 0


def report(rows: list[tuple[float, float, float, float, int, int]], count: int, peak_kib: int) -> None:
    print(f"ingest: {count} x RG1_UNCR (7.2 MB each) over one association per round, sender DCMTK storescu")
    print(
        f"{'round':>5} {'ours inst/s':>12} {'storescp inst/s':>16} {'ours MB/s':>10} {'storescp MB/s':>14}"
        f" {'ratio':>6} {'RSS before MiB':>15} {'RSS after MiB':>14}"
    )
    for i, (ours, peer, ours_mb, peer_mb, before, after) in enumerate(rows, start=1):
        print(
            f"{i:>5} {ours:>12.1f} {peer:>16.1f} {ours_mb:>10.1f} {peer_mb:>14.1f} {ours / peer:>6.2f}"
            f" {before / 1024:>15.1f} {after / 1024:>14.1f}"
        )
    ratios = sorted(r[0] / r[1] for r in rows)
    median = ratios[len(ratios) // 2] if len(ratios) % 2 else sum(ratios[len(ratios) // 2 - 1 :][:2]) / 2
    growth = (rows[-1][5] - rows[0][4]) / 1024
    print(
        f"median ratio ours/storescp {median:.2f} (target >= 1.5), range {ratios[0]:.2f}-{ratios[-1]:.2f};"
        f" our SCP peak RSS {peak_kib / 1024:.1f} MiB, growth over {len(rows) * count} instances {growth:.1f} MiB"
    )


if __name__ == "__main__":
    raise SystemExit(main())
