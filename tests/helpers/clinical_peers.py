"""Receivers of the clinical messages, none of them our client code: an MLLP listener built on python-hl7's asyncio
server, and an HTTP server (the standard library's) standing in for a FHIR server or a webhook receiver. Each follows a
script of answers, then accepts, and records what it received."""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import hl7
from hl7.mllp import start_hl7_server

from tests.helpers.http_files import serving
from tests.helpers.peers import free_port

DROP = "DROP"
"""Close the connection on receipt, without an ACK."""


@dataclass
class MllpPeer:
    port: int
    script: list[str]
    """ACK codes (AA, AE, AR) or DROP, one per message received, then AA."""
    received: list[str] = field(default_factory=list)
    """Every message that arrived, as text, DROPped ones included."""
    error_text: str = "Patient not found in the RIS"

    def answer(self, message: hl7.Message) -> str | None:
        self.received.append(str(message))
        code = self.script.pop(0) if self.script else "AA"
        if code == DROP:
            return None
        ack = message.create_ack(code, message_id="ACK" + str(len(self.received)))
        if code != "AA":
            ack.segment("MSA").append(ack.create_field([self.error_text]))
        return str(ack)


@contextlib.contextmanager
def mllp_peer(
    script: list[str] | None = None, port: int | None = None, tls: ssl.SSLContext | None = None
) -> Iterator[MllpPeer]:
    """With ``tls``, MLLP over TLS (the server context holds the peer's certificate)."""
    peer = MllpPeer(port or free_port(), list(script or []))
    loop = asyncio.new_event_loop()
    ready = threading.Event()

    async def on_client(reader: Any, writer: Any) -> None:
        try:
            while True:
                message = await reader.readmessage()
                reply = peer.answer(message)
                if reply is None:
                    writer.close()
                    return
                writer.writemessage(reply)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
            pass
        finally:
            writer.close()

    async def serve() -> Any:
        server = await start_hl7_server(on_client, "127.0.0.1", peer.port, encoding="utf-8", ssl=tls)
        ready.set()
        return server

    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    server = asyncio.run_coroutine_threadsafe(serve(), loop).result(timeout=10)
    ready.wait(10)
    try:
        yield peer
    finally:
        server.close()
        asyncio.run_coroutine_threadsafe(server.wait_closed(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()


@dataclass
class HttpPeer:
    port: int
    script: list[int]
    """HTTP statuses, one per POST, then 200."""
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    """(headers, body) of every POST."""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/fhir"

    def json_bodies(self) -> list[dict[str, Any]]:
        return [json.loads(body) for _, body in self.received]


@contextlib.contextmanager
def http_peer(script: list[int] | None = None, port: int | None = None) -> Iterator[HttpPeer]:
    peer = HttpPeer(port or free_port(), list(script or []))

    class Handler(BaseHTTPRequestHandler):
        wbufsize = 1 << 16  # the answer leaves in one segment, as a real server's does (no Nagle stall)

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            peer.received.append((dict(self.headers.items()), body))
            status = peer.script.pop(0) if peer.script else 200
            answer = json.dumps(
                {"resourceType": "Bundle", "type": "transaction-response"}
                if status < 300
                else {
                    "resourceType": "OperationOutcome",
                    "issue": [{"severity": "error", "code": "invalid", "diagnostics": f"scripted {status}"}],
                }
            ).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/fhir+json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, format: str, *args: object) -> None:
            pass

    with serving(ThreadingHTTPServer(("127.0.0.1", peer.port), Handler)):
        yield peer


@contextlib.contextmanager
def cutting_peer(read_bytes: int = 16) -> Iterator[int]:
    """A listener that reads the first bytes of whatever is sent and closes the connection: a peer that drops
    mid-message. Yields its port."""
    import socket

    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
            except TimeoutError:
                continue
            with connection:
                connection.recv(read_bytes)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        thread.join(timeout=5)
        listener.close()
