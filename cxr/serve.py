"""``cxr serve``: the SCP, the workers and the sweeper as child processes of one supervisor, stopped together.

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
from pathlib import Path
from types import FrameType

logger = logging.getLogger(__name__)

GRACE_SECONDS = 15.0
PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    # Not Linux: the signal handlers below still stop the children on a normal exit.
    with contextlib.suppress(OSError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def child_commands(config: Path | None, dashboard: bool = True) -> list[list[str]]:
    base = [sys.executable, "-m", "cxr"]
    options = ["--config", str(config)] if config is not None else []
    commands = [
        [*base, "scp", *options],
        [*base, "worker", "--queues", "gpu", *options],
        [*base, "worker", "--queues", "io", *options],
        [*base, "sweeper", *options],
    ]
    return commands + ([[*base, "dashboard", *options]] if dashboard else [])


def supervise(commands: list[list[str]]) -> int:
    """Run the children until a signal or until one of them exits; returns the exit status for the supervisor."""
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        logger.info("received %s; stopping", signal.Signals(signum).name)
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    children = [subprocess.Popen(c, preexec_fn=_die_with_parent) for c in commands]
    logger.info("started %d processes: %s", len(children), ", ".join(str(c.pid) for c in children))
    status = 0
    try:
        while not stop.wait(0.5):
            exited = [c for c in children if c.poll() is not None]
            if exited:
                logger.error("process %d exited with %s; stopping the others", exited[0].pid, exited[0].returncode)
                status = 1
                break
    finally:
        stop_processes(children)
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return status


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
