"""A TCP relay that cuts the connection after a number of bytes: a network failure in the middle of a transfer."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress


def _pump(source: socket.socket, sink: socket.socket, budget: list[int] | None, done: threading.Event) -> None:
    try:
        while not done.is_set():
            data = source.recv(65536)
            if not data:
                break
            if budget is not None:
                data = data[: budget[0]]
                budget[0] -= len(data)
            sink.sendall(data)
            if budget is not None and budget[0] <= 0:
                break
    except OSError:
        pass
    finally:
        done.set()
        for s in (source, sink):
            with suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()


@contextmanager
def cutting_relay(target_port: int, cut_after_bytes: int) -> Iterator[int]:
    """Yields a port; the first connection to it is relayed to ``target_port`` and cut after that many bytes
    upstream."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = int(listener.getsockname()[1])

    def serve() -> None:
        try:
            client, _ = listener.accept()
        except OSError:
            return
        upstream = socket.create_connection(("127.0.0.1", target_port))
        done = threading.Event()
        threading.Thread(target=_pump, args=(client, upstream, [cut_after_bytes], done), daemon=True).start()
        threading.Thread(target=_pump, args=(upstream, client, None, done), daemon=True).start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield port
    finally:
        listener.close()
        thread.join(timeout=5)
