"""``cxr scp``: the DICOM listener in ``scp.processes`` processes that share one port.

One Python process holds every association it accepts, so four associations went no faster than one (bench/ingest.py).
Each process here runs its own pynetdicom server on the same address with SO_REUSEPORT, and the kernel spreads
incoming connections across them. Every process writes in the same durable order (fsync, rename, committed row, then
0x0000) and applies the same allow-lists; the association limits are shared out (each process takes its part), and
each process completes the studies its own associations released. Completion claims studies with
``SELECT … FOR UPDATE SKIP LOCKED`` (a second claimant on SQLite fails its pass and looks again), so a study becomes
one job whichever process sees it due. The first process speaks for the application in the audit trail (its start
and stop, once); every process audits the transfers and refusals it saw.
"""

from __future__ import annotations

import logging
import math
import multiprocessing
import os
import signal
import tempfile
import threading
from pathlib import Path

from config.settings import Settings
from dicom_node.scp import Listener

logger = logging.getLogger(__name__)


def process_count(settings: Settings) -> int:
    """``scp.processes``, 0 meaning one per core this process may run on; one where the system picks the port (0)."""
    wanted = settings.scp.processes or len(os.sched_getaffinity(0)) or 1
    return 1 if settings.scp.port == 0 else max(1, wanted)


def share_of(settings: Settings, count: int) -> Settings:
    """The settings one of ``count`` processes runs with: its part of the node's association limit, and the limit per
    source within that part. The per-source limit is not divided: the kernel spreads one source's connections over
    the processes by address and port, not evenly, and a divided limit refused a source's fourth association while
    the node had room (a CI run of ``tests/integration/test_scp_processes.py``)."""
    share = math.ceil(settings.scp.maximum_associations / count)
    scp = settings.scp.model_copy(
        update={
            "maximum_associations": share,
            "maximum_associations_per_source": min(settings.scp.maximum_associations_per_source, share),
        }
    )
    return settings.model_copy(update={"scp": scp})


def wait_for_signal() -> None:
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    stop.wait()


def serve_one(settings: Settings, listener: Listener) -> None:
    """One listening process, until SIGTERM or SIGINT."""
    from db.engine import make_engine, make_session_factory
    from dicom_node.scp import start_node
    from worker.queue import task_queue

    # pynetdicom streams received data sets into temporary files; in the spool's own .incoming a received file is
    # renamed into place instead of copied. Each SCP process owns its temporary directory.
    (settings.spool_dir / ".incoming").mkdir(parents=True, exist_ok=True)
    tempfile.tempdir = str(settings.spool_dir / ".incoming")
    sessions = make_session_factory(make_engine(settings.database_url))
    queue = task_queue(settings, sessions)
    early = queue.enqueue_early_analysis if settings.worker.early_analysis_mb > 0 else None
    node = start_node(settings, sessions, queue.enqueue_analysis, early, listener)
    wait_for_signal()
    node.stop()


def _stop_with_parent() -> None:
    """A child whose parent died without stopping it (SIGKILL) stops too, freeing the port."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            threading.Event().wait(1.0)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _child(config: str | None, count: int) -> None:
    from cxr.startup import load_settings

    _stop_with_parent()
    serve_one(share_of(load_settings(Path(config) if config else None, "scp"), count), Listener.SIBLING)


def run(config: Path | None, settings: Settings) -> None:
    """The listener in ``process_count`` processes: this one and its children, stopped together."""
    count = process_count(settings)
    if count == 1:
        serve_one(settings, Listener.ALONE)
        return
    spawn = multiprocessing.get_context("spawn")  # no state of ours crosses: each child loads the settings itself
    children = [
        spawn.Process(target=_child, args=(str(config) if config else None, count), name=f"scp-{n}", daemon=True)
        for n in range(1, count)
    ]
    for child in children:
        child.start()
    logger.info("SCP in %d processes sharing port %d", count, settings.scp.port)
    try:
        serve_one(share_of(settings, count), Listener.FIRST)
    finally:
        for child in children:
            child.terminate()  # SIGTERM: each stops its server and completion like this one
        for child in children:
            child.join(timeout=10)
