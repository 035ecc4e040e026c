"""A Redis server of the test's own, with an append-only file, that the test can kill and start again."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.helpers.peers import free_port, require_tool


@dataclass
class RedisServer:
    port: int
    directory: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        # appendfsync always: every write is on disk before Redis answers, so even SIGKILL loses nothing acknowledged.
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.directory),
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--save",
                "",
                "--logfile",
                "redis.log",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            ping = subprocess.run(["redis-cli", "-p", str(self.port), "ping"], capture_output=True, text=True)
            if ping.stdout.strip() == "PONG":
                return
            time.sleep(0.1)
        raise TimeoutError(f"redis-server did not answer on port {self.port}")

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=20)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=20)

    def restart(self, down_s: float) -> None:
        """SIGKILL (no shutdown save), stay down ``down_s`` seconds, then start from the append-only file."""
        self.kill()
        time.sleep(down_s)
        self.start()


@contextmanager
def redis_server(directory: Path, started: bool = True) -> Iterator[RedisServer]:
    """A server on a free port; ``started=False`` leaves it down until the test calls ``start()``."""
    require_tool("redis-server")
    require_tool("redis-cli")
    directory.mkdir(parents=True, exist_ok=True)
    server = RedisServer(free_port(), directory)
    if started:
        server.start()
    try:
        yield server
    finally:
        server.stop()
