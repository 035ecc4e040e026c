"""MLLP transport (HL7 v2 over TCP, optionally TLS): one message out, its ACK back, with python-hl7's framing."""

from __future__ import annotations

import asyncio
import contextlib
import ssl

from hl7.mllp import InvalidBlockError, open_hl7_connection

from config.outputs import Hl7Endpoint


class MllpError(Exception):
    """No ACK came: refused, dropped, timed out or garbled. Worth retrying."""


def _tls(endpoint: Hl7Endpoint) -> ssl.SSLContext | None:
    if not endpoint.tls:
        return None
    context = ssl.create_default_context(
        cafile=str(endpoint.tls_ca_certificates) if endpoint.tls_ca_certificates else None
    )
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


async def _exchange(endpoint: Hl7Endpoint, message: str) -> str:
    tls = _tls(endpoint)
    reader, writer = await open_hl7_connection(
        endpoint.host, endpoint.port, encoding="utf-8", ssl=tls, server_hostname=endpoint.host if tls else None
    )
    try:
        writer.writeblock(message.encode("utf-8"))
        await writer.drain()
        block: bytes = await reader.readblock()
        return block.decode("utf-8", errors="replace")
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError, ssl.SSLError):  # the peer went first; the ACK is already in hand
            await writer.wait_closed()


def send_message(endpoint: Hl7Endpoint, message: str) -> str:
    """Send ``message`` and return the peer's reply (the ACK's text); raise ``MllpError`` when none came."""
    try:
        return asyncio.run(asyncio.wait_for(_exchange(endpoint, message), timeout=endpoint.timeout_s))
    except TimeoutError as exc:
        raise MllpError(f"no ACK within {endpoint.timeout_s:g} s") from exc
    except (OSError, EOFError, asyncio.IncompleteReadError, InvalidBlockError, ssl.SSLError) as exc:
        raise MllpError(f"MLLP exchange failed ({type(exc).__name__})") from exc
