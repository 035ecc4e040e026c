"""``cxr serve``: the SCP, the workers and the sweeper as child processes of one supervisor, restarted when they die
and stopped together.

Children get SIGTERM on Ctrl-C or SIGTERM (then SIGKILL after a grace period), and the kernel signals them if the
supervisor itself dies (PR_SET_PDEATHSIG), so no orphan survives.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from cxr.startup import STARTUP_ERROR

logger = logging.getLogger(__name__)

GRACE_SECONDS = 15.0
PR_SET_PDEATHSIG = 1
RESTART_MAX_S = 60.0
STABLE_S = 60.0
"""A part that ran this long before it died is restarted after the shortest backoff again."""


def _die_with_parent() -> None:
    # Not Linux: the signal handlers below still stop the children on a normal exit.
    with contextlib.suppress(OSError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def child_commands(config: Path | None, dashboard: bool = True, analysis: tuple[int, int] = (1, 0)) -> list[list[str]]:
    """``analysis``: how many analysis workers, and the compute threads each takes (0: the libraries' defaults)."""
    base = [sys.executable, "-m", "cxr"]
    options = ["--config", str(config)] if config is not None else []
    count, threads = analysis
    analysing = [*base, "worker", "--queues", "gpu", *(["--threads", str(threads)] if threads else []), *options]
    commands = [
        [*base, "scp", *options],
        *(list(analysing) for _ in range(count)),
        [*base, "worker", "--queues", "io", *options],
        [*base, "sweeper", *options],
    ]
    return commands + ([[*base, "dashboard", *options]] if dashboard else [])


@dataclass
class Child:
    """One supervised part, restarted with backoff when it dies."""

    command: list[str]
    process: subprocess.Popen[bytes]
    started_at: float = field(default_factory=time.monotonic)
    restarts: int = 0
    restart_at: float | None = None

    @property
    def name(self) -> str:
        words = self.command[3:]  # after "python -m cxr"
        return " ".join(words[: words.index("--config")] if "--config" in words else words)

    def start(self) -> None:
        self.process = _spawn(self.command)
        self.started_at, self.restart_at = time.monotonic(), None


def _spawn(command: list[str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(command, preexec_fn=_die_with_parent)


def supervise(commands: list[list[str]], ready: Callable[[], str | None] | None = None, ready_line: str = "") -> int:
    """Run the children until a signal; a child that dies is started again after a backoff (1 s, doubling to a
    minute, back to 1 s once it has run for a minute). A child that exits with the start-up error code (2) stops
    everything: starting it again cannot help. ``ready`` (None when every part is up) is asked each second until it
    says so; then ``ready_line`` is logged, once. Returns the exit status for the supervisor."""
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        logger.info("received %s; stopping", signal.Signals(signum).name)
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    children = [Child(command, _spawn(command)) for command in commands]
    logger.info("started %d processes: %s", len(children), ", ".join(str(c.process.pid) for c in children))
    status = 0
    waiting_since = time.monotonic()
    try:
        while not stop.wait(0.5):
            status = _tend(children)
            if status:
                break
            if ready is not None and time.monotonic() - waiting_since >= 1.0:
                waiting_since = time.monotonic()
                if ready() is None:
                    logger.info("%s", ready_line)
                    ready = None
    finally:
        stop_processes([c.process for c in children])
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return status


def _tend(children: list[Child]) -> int:
    """Restart what is due; schedule the restart of what died. Non-zero: give up, with this exit status."""
    now = time.monotonic()
    for child in children:
        if child.restart_at is not None:
            if now >= child.restart_at:
                child.start()
                logger.warning("restarted %s as process %d", child.name, child.process.pid)
            continue
        code = child.process.poll()
        if code is None:
            continue
        if code == STARTUP_ERROR:  # configuration, schema, port: starting it again cannot help
            logger.error("%s (process %d) could not start (exit %d); stopping the others", child.name,
                         child.process.pid, code)  # fmt: skip
            return STARTUP_ERROR
        if now - child.started_at > STABLE_S:
            child.restarts = 0
        delay = min(RESTART_MAX_S, 2.0**child.restarts)
        child.restarts += 1
        child.restart_at = now + delay
        logger.error("%s (process %d) exited with %s; restarting it in %.0f s", child.name, child.process.pid, code,
                     delay)  # fmt: skip
    return 0


def stop_processes(children: list[subprocess.Popen[bytes]], grace_s: float = GRACE_SECONDS) -> None:
    """SIGTERM each, then SIGKILL whatever has not exited within ``grace_s``: nothing outlives its supervisor."""
    for child in children:
        if child.poll() is None:
            child.terminate()
    deadline = time.monotonic() + grace_s
    for child in children:
        try:
            child.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            logger.warning("process %d did not stop in %.0f s; killing it", child.pid, grace_s)
            child.kill()
            child.wait()
