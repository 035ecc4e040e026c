"""Reading PDUs off a connection, ours against pynetdicom's in the same invocation.

1. Bodies: ``dicom_node.sockets.receive_whole`` (one buffer per PDU, filled by ``recv_into``) against pynetdicom's
   ``AssociationSocket.recv`` (4 KiB reads appended to a growing buffer). A writer thread sends ``--count`` PDU bodies
   of ``--pdu-kib`` KiB (the SCP advertises 1 MiB) over a local socket pair, and each reader takes them whole.
2. P-DATA-TF PDUs, read, decoded and their fragments handed on as pynetdicom's DIMSE layer does (the value past its
   control byte written to a file, here ``/dev/null`` so that only the reader's own copies count): the SCP's DUL
   (``dicom_node.pdu_reading``, values as views of the read buffer) against pynetdicom's ``_read_pdu_data`` with the
   same bounded ``receive_whole`` underneath (the node before), with 128 KiB PDUs, DCMTK's size.

Figures: wall ms per MiB and the process's CPU ms per MiB (reader and writer together), median of ``--rounds``; the
ratio is pynetdicom's over ours.

    .venv/bin/python bench/pdu_receive.py [--count 200] [--pdu-kib 1024] [--rounds 5]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pynetdicom import AE
from pynetdicom.association import Association
from pynetdicom.dul import DULServiceProvider
from pynetdicom.pdu import P_DATA_TF
from pynetdicom.pdu_primitives import P_DATA
from pynetdicom.transport import AssociationSocket

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from dicom_node.reactor import EventDrivenDUL
from dicom_node.sockets import receive_whole

Reader = Callable[[AssociationSocket, int], Any]
Round = Callable[[socket.socket, AssociationSocket], None]


def pynetdicom_recv(sock: AssociationSocket, nr_bytes: int) -> bytearray:
    return sock.recv(nr_bytes)


def timed(payload: bytes, count: int, receive: Round) -> tuple[float, float]:
    """(wall ms, CPU ms) per MiB for ``receive`` taking ``count`` sends of ``payload`` over a socket pair."""
    writer, reader = socket.socketpair()
    sock = AssociationSocket(Association(AE(), "acceptor"), client_socket=reader)
    sending = threading.Thread(target=lambda: [writer.sendall(payload) for _ in range(count)])
    cpu, wall = time.process_time(), time.perf_counter()
    sending.start()
    receive(writer, sock)
    sending.join()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    writer.close()
    reader.close()
    mib = count * len(payload) / 2**20
    return wall * 1000 / mib, cpu * 1000 / mib


def bodies(read: Reader, count: int, size: int) -> Round:
    def receive(writer: socket.socket, sock: AssociationSocket) -> None:
        for _ in range(count):
            if len(read(sock, size)) != size:
                raise RuntimeError("short read")

    return receive


DulMaker = Callable[[Association], DULServiceProvider]


def p_data_pdus(make_dul: DulMaker, count: int) -> Round:
    """Read ``count`` P-DATA-TF PDUs through a DUL ``make_dul`` makes and write each fragment on, as DIMSE does."""

    def receive(writer: socket.socket, sock: AssociationSocket) -> None:
        dul = make_dul(sock.assoc)
        dul.socket = sock
        sock.recv = lambda nr_bytes: receive_whole(sock, nr_bytes)  # type: ignore[method-assign]
        with open(os.devnull, "wb", buffering=0) as sink:
            for _ in range(count):
                dul._read_pdu_data()
                pdu = dul._recv_pdu.get(block=False)
                assert dul.event_queue.get(block=False) == "Evt10" and isinstance(pdu, P_DATA_TF)
                for item in pdu.presentation_data_value_items:
                    sink.write(item.data[1:])  # type: ignore[index]

    return receive


def encoded_p_data(size: int) -> bytes:
    primitive = P_DATA()
    primitive.presentation_data_value_list = [[1, b"\x00" + b"\x5a" * (size - 6 - 5 - 1)]]
    return P_DATA_TF(primitive).encode()


def report(title: str, rounds: dict[str, list[tuple[float, float]]], ours: str, theirs: str) -> None:
    print(f"{title}\n\n| reader | wall ms per MiB | CPU ms per MiB |\n|---|---|---|")
    medians = {}
    for name, figures in rounds.items():
        walls, cpus = [w for w, _ in figures], [c for _, c in figures]
        medians[name] = (statistics.median(walls), statistics.median(cpus))
        print(
            f"| {name} | {medians[name][0]:.2f} ({min(walls):.2f}–{max(walls):.2f}) "
            f"| {medians[name][1]:.2f} ({min(cpus):.2f}–{max(cpus):.2f}) |"
        )
    print(
        f"\npynetdicom / ours: wall {medians[theirs][0] / medians[ours][0]:.2f}, "
        f"CPU {medians[theirs][1] / medians[ours][1]:.2f}\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--pdu-kib", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    size, pdus = args.pdu_kib * 1024, args.count * args.pdu_kib // 128
    first = {"ours (receive_whole)": receive_whole, "pynetdicom (recv)": pynetdicom_recv}
    second: dict[str, DulMaker] = {
        "ours (EventDrivenDUL)": lambda assoc: EventDrivenDUL(assoc, lambda: None),
        "pynetdicom": DULServiceProvider,
    }
    figures: dict[str, list[tuple[float, float]]] = {name: [] for name in [*first, *second]}
    p_data = encoded_p_data(128 * 1024)
    for _ in range(args.rounds):
        for name, read in first.items():
            figures[name].append(timed(b"\x5a" * size, args.count, bodies(read, args.count, size)))
        for name, make_dul in second.items():
            figures[name].append(timed(p_data, pdus, p_data_pdus(make_dul, pdus)))
    print(f"{args.rounds} rounds; median (range)\n")
    report(f"{args.count} PDU bodies of {args.pdu_kib} KiB per round", {n: figures[n] for n in first}, *first)
    report(
        f"{pdus} P-DATA-TF PDUs of 128 KiB per round, read, decoded and written on",
        {n: figures[n] for n in second},
        *second,
    )


if __name__ == "__main__":
    main()
