"""A local HTTP file server for download tests: Range requests, an optional first response cut short, and a log of
what each request asked for. It serves from memory and stops when its context ends."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Served:
    files: dict[str, bytes]
    cut_first_after: int | None = None
    """Send only this many bytes of the first response (announcing the whole length), then close."""
    requests: list[tuple[str, str | None]] = field(default_factory=list)
    """(path, Range header) of every request."""
    bytes_sent: int = 0
    url: str = ""


def _handler(served: Served) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            ranged = self.headers.get("Range")
            served.requests.append((self.path, ranged))
            body = served.files.get(self.path.lstrip("/"))
            if body is None:
                self.send_error(404)
                return
            start = int(ranged.removeprefix("bytes=").rstrip("-")) if ranged else 0
            if start >= len(body) and start:
                self.send_error(416)
                return
            self.send_response(206 if start else 200)
            if start:
                self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
            self.send_header("Content-Length", str(len(body) - start))
            self.end_headers()
            chunk = body[start:]
            if served.cut_first_after is not None and len(served.requests) == 1:
                chunk = chunk[: served.cut_first_after]
                self.close_connection = True
            self.wfile.write(chunk)
            served.bytes_sent += len(chunk)

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


@contextmanager
def serving(server: ThreadingHTTPServer) -> Iterator[ThreadingHTTPServer]:
    """``server`` answering on a background thread until the context ends, then shut down and closed."""
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@contextmanager
def http_files(served: Served) -> Iterator[Served]:
    with serving(ThreadingHTTPServer(("127.0.0.1", 0), _handler(served))) as server:
        served.url = f"http://127.0.0.1:{server.server_address[1]}"
        yield served
