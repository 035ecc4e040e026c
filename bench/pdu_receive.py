"""Reading PDUs off a connection: ``dicom_node.sockets.receive_whole`` (one buffer per PDU, filled by ``recv_into``)
against pynetdicom's ``AssociationSocket.recv`` (4 KiB reads appended to a growing buffer), in the same invocation.

A writer thread sends ``--count`` PDU bodies of ``--pdu-kib`` KiB (the SCP advertises 1 MiB; storescu and most
senders fill it) over a local socket pair, and each reader takes them whole. Figures: wall ms per MiB and the process's
CPU ms per MiB (reader and writer together), median of ``--rounds``; the ratio is pynetdicom's over ours.

    .venv/bin/python bench/pdu_receive.py [--count 200] [--pdu-kib 1024] [--rounds 5]
"""

from __future__ import annotations

import argparse
import socket
import statistics
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from pynetdicom import AE
from pynetdicom.association import Association
from pynetdicom.transport import AssociationSocket

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from dicom_node.sockets import receive_whole

Reader = Callable[[AssociationSocket, int], bytearray]


def pynetdicom_recv(sock: AssociationSocket, nr_bytes: int) -> bytearray:
    return sock.recv(nr_bytes)


def one_round(read: Reader, count: int, size: int) -> tuple[float, float]:
    """(wall ms, CPU ms) per MiB for ``count`` bodies of ``size`` bytes."""
    writer, reader = socket.socketpair()
    sock = AssociationSocket(Association(AE(), "acceptor"), client_socket=reader)
    body = b"\x5a" * size
    sending = threading.Thread(target=lambda: [writer.sendall(body) for _ in range(count)])
    cpu, wall = time.process_time(), time.perf_counter()
    sending.start()
    for _ in range(count):
        if len(read(sock, size)) != size:
            raise RuntimeError("short read")
    sending.join()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    writer.close()
    reader.close()
    mib = count * size / 2**20
    return wall * 1000 / mib, cpu * 1000 / mib


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--pdu-kib", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    readers: dict[str, Reader] = {"ours (receive_whole)": receive_whole, "pynetdicom (recv)": pynetdicom_recv}
    figures: dict[str, list[tuple[float, float]]] = {name: [] for name in readers}
    for _ in range(args.rounds):
        for name, read in readers.items():
            figures[name].append(one_round(read, args.count, args.pdu_kib * 1024))
    print(f"{args.count} PDU bodies of {args.pdu_kib} KiB per round, {args.rounds} rounds; median (range)\n")
    print("| reader | wall ms per MiB | CPU ms per MiB |\n|---|---|---|")
    medians = {}
    for name, rounds in figures.items():
        walls, cpus = [w for w, _ in rounds], [c for _, c in rounds]
        medians[name] = (statistics.median(walls), statistics.median(cpus))
        print(
            f"| {name} | {medians[name][0]:.2f} ({min(walls):.2f}–{max(walls):.2f}) "
            f"| {medians[name][1]:.2f} ({min(cpus):.2f}–{max(cpus):.2f}) |"
        )
    ours, theirs = medians["ours (receive_whole)"], medians["pynetdicom (recv)"]
    print(f"\npynetdicom / ours: wall {theirs[0] / ours[0]:.2f}, CPU {theirs[1] / ours[1]:.2f}")


if __name__ == "__main__":
    main()
