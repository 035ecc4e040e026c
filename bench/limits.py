"""The SCP's memory under hostile input: resident set (VmRSS) and peak (VmHWM) of ``cxr scp`` before and after each
attack, next to DCMTK storescp given the same in the same run.

1. a 64 MiB PDU sent whole (the header claims it, the body follows);
2. a deflate bomb: a deflated data set of about 300 KiB that inflates to 288 MiB (over ``scp.max_dataset_bytes``,
   256 MiB by default), stored over an association;
3. 20 idle connections and 20 that send garbage and close, then a C-ECHO;
4. for scale, 20 ordinary C-STOREs of RG1 (7 MiB each).

    .venv/bin/python bench/limits.py
"""

from __future__ import annotations

import contextlib
import copy
import socket
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import pydicom
from pydicom.data import get_testdata_file
from pydicom.uid import DeflatedExplicitVRLittleEndian, generate_uid
from pynetdicom import AE, _config

from tests.helpers.peers import free_port, require_tool, wait_for_port
from tests.helpers.scp import echo_seconds

BOMB_PIXELS = 12288  # 12288 x 12288 zeros at 16 bits: 288 MiB inflated, over the default 256 MiB limit


def status_mb(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) of the process, in MB."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


@contextmanager
def ours(workdir: Path) -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    port = free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "cxr.toml"
    config.write_text(f'data_dir = "{workdir / "var"}"\n[scp]\nhost = "127.0.0.1"\nport = {port}\n')
    subprocess.run(
        [sys.executable, "-m", "cxr", "db", "upgrade", "--config", str(config)], check=True, capture_output=True
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "cxr", "scp", "--config", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, timeout_s=60)
        yield port, process
    finally:
        process.terminate()
        process.wait(timeout=20)


@contextmanager
def storescp(workdir: Path) -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    port = free_port()
    (workdir / "pacs").mkdir(parents=True, exist_ok=True)
    process = subprocess.Popen(
        ["storescp", "-aet", "CXR_AI", "+xa", "-od", str(workdir / "pacs"), str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port)
        yield port, process
    finally:
        process.terminate()
        process.wait(timeout=20)


def big_pdu(port: int) -> None:
    body = bytes(64 * 1024 * 1024)
    refused_mid_body = contextlib.suppress(OSError)  # refused from its header: the node closes on us mid-body
    with socket.create_connection(("127.0.0.1", port), timeout=30) as connection, refused_mid_body:
        connection.sendall(struct.pack(">BBL", 0x04, 0, len(body)) + body)
        connection.recv(64)


def store(port: int, path: Path) -> int | None:
    _config.STORE_SEND_CHUNKED_DATASET = True
    header = pydicom.dcmread(path, stop_before_pixels=True)
    ae = AE(ae_title="PACS")
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 120
    ae.add_requested_context(header.SOPClassUID, header.file_meta.TransferSyntaxUID)
    association = ae.associate("127.0.0.1", port, ae_title="CXR_AI")
    if not association.is_established:
        return None
    try:
        response = association.send_c_store(path)
    finally:
        if association.is_established:
            association.release()
    return int(response.Status) if "Status" in response else None


def connections(port: int) -> None:
    with ExitStack() as stack:
        for _ in range(20):
            stack.enter_context(socket.create_connection(("127.0.0.1", port)))
        for index in range(20):
            with socket.create_connection(("127.0.0.1", port)) as connection:
                connection.sendall(bytes([index]) * 64 + b"\x01\x00\xff\xff\xff\xff")
        echo_seconds(port)


def inputs(workdir: Path) -> tuple[Path, list[Path]]:
    rg1 = pydicom.dcmread(str(get_testdata_file("RG1_UNCR.dcm")))
    bomb = copy.deepcopy(rg1)
    bomb.Rows = bomb.Columns = BOMB_PIXELS
    bomb.PixelData = np.zeros((BOMB_PIXELS, BOMB_PIXELS), dtype=np.uint16).tobytes()
    bomb.SOPInstanceUID = bomb.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    bomb.file_meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    bomb_path = workdir / "bomb.dcm"
    bomb.save_as(bomb_path, enforce_file_format=True)
    copies = []
    for index in range(20):
        rg1.StudyInstanceUID, rg1.SOPInstanceUID = generate_uid(), generate_uid()
        rg1.file_meta.MediaStorageSOPInstanceUID = rg1.SOPInstanceUID
        copies.append(workdir / f"rg1-{index}.dcm")
        rg1.save_as(copies[-1], enforce_file_format=True)
    return bomb_path, copies


def measure(server: Callable[[Path], contextlib.AbstractContextManager[tuple[int, subprocess.Popen[bytes]]]],
            workdir: Path, bomb: Path, copies: list[Path]) -> list[tuple[str, float, float, str]]:  # fmt: skip
    rows = []
    with server(workdir) as (port, process):
        echo_seconds(port)
        time.sleep(1)
        rss, peak = status_mb(process.pid)
        rows.append(("started (one C-ECHO)", rss, peak, ""))
        attacks: list[tuple[str, Callable[[], object]]] = [
            ("64 MiB PDU sent whole", lambda: big_pdu(port)),
            ("deflate bomb (288 MiB inflated)", lambda: store(port, bomb)),
            ("20 idle + 20 garbage connections", lambda: connections(port)),
            ("20 x RG1 stored (7 MiB each)", lambda: [store(port, p) for p in copies]),
        ]
        for name, attack in attacks:
            outcome = attack()
            time.sleep(1)
            rss, peak = status_mb(process.pid)
            alive = "answers C-ECHO" if echo_seconds(port) is not None else "NOT ANSWERING"
            detail = f"status 0x{outcome:04X}, {alive}" if isinstance(outcome, int) else alive
            rows.append((name, rss, peak, detail))
    return rows


def main() -> int:
    for tool in ("storescp",):
        require_tool(tool)
    root = Path(tempfile.mkdtemp(prefix="cxr-limits-"))
    bomb, copies = inputs(root)
    node = measure(ours, root / "ours", bomb, copies)
    peer = measure(storescp, root / "storescp", bomb, copies)
    print(f"{'after':<36} {'cxr scp RSS / peak MB':>22} {'storescp RSS / peak MB':>24} {'peak ratio':>10}  outcome")
    for (name, rss, peak, detail), (_, peer_rss, peer_peak, peer_detail) in zip(node, peer, strict=True):
        ratio = peak / peer_peak if peer_peak else float("nan")
        figures = f"{rss:>10.0f} / {peak:<9.0f} {peer_rss:>12.0f} / {peer_peak:<9.0f} {ratio:>10.1f}"
        print(f"{name:<36} {figures}  ours: {detail}; storescp: {peer_detail}")
    subprocess.run(["rm", "-rf", str(root)], check=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
