"""``cxr serve`` as a real subprocess on free ports, with a temporary data directory."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pydicom

from cxr.serve import stop_processes
from db import deliveries, jobs
from db.engine import make_engine, make_session_factory
from db.jobs import JobSummary
from db.models import DeliveryState
from tests.helpers.peers import free_port, wait_for_port


@dataclass
class RunningNode:
    config: Path
    port: int
    database_url: str
    process: subprocess.Popen[bytes]
    log: Path
    dashboard_port: int = 0

    @property
    def dashboard_url(self) -> str:
        return f"http://127.0.0.1:{self.dashboard_port}"

    def jobs(self, study_uid: str | None = None) -> list[JobSummary]:
        engine = make_engine(self.database_url)
        try:
            with make_session_factory(engine)() as session:
                return jobs.list_jobs(session, study_uid)
        finally:
            engine.dispose()

    def delivery_states(self, job_id: int) -> list[DeliveryState]:
        engine = make_engine(self.database_url)
        try:
            with make_session_factory(engine)() as session:
                return deliveries.job_delivery_states(session, job_id)
        finally:
            engine.dispose()


def processes_naming(text: str) -> list[int]:
    """PIDs whose command line mentions ``text`` (our unique config path): finds orphans of any kind."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmdline:
            found.append(int(entry.name))
    return found


@contextmanager
def cxr_serve(
    workdir: Path,
    destination_port: int | None,
    database_url: str = "",
    broker_url: str = "",
    extra_toml: str = "",
    port: int | None = None,
    dashboard_toml: str = "",
    destination_ae: str = "PACS",
    scp_toml: str = "",
    python: str = sys.executable,
    debounce_s: float = 0.5,
) -> Iterator[RunningNode]:
    """``dashboard_toml`` and ``scp_toml`` go into those tables; the dashboard gets a free port. ``python`` is the
    interpreter of the environment the node runs in (another venv's, for the light install)."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    database_url = database_url or f"sqlite:///{workdir / 'var' / 'cxr.sqlite'}"
    config = workdir / "cxr.toml"
    lines = [f'data_dir = "{workdir / "var"}"', f'database_url = "{database_url}"']
    if broker_url:
        lines.append(f'broker_url = "{broker_url}"')
    dashboard_port = free_port()
    lines += ["[dashboard]", f"port = {dashboard_port}", dashboard_toml]
    lines += ["[scp]", 'host = "127.0.0.1"', f"port = {port}", f"completion_debounce_s = {debounce_s}", scp_toml]
    if destination_port is not None:
        lines += [
            "[[destinations]]",
            'name = "pacs"',
            f'ae_title = "{destination_ae}"',
            'host = "127.0.0.1"',
            f"port = {destination_port}",
        ]
    config.write_text("\n".join(lines) + "\n" + extra_toml)
    log = workdir / "serve.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CXR_")}
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [python, "-m", "cxr", "serve", "--config", str(config)],
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,  # its own process group, so that nothing it started can outlive the test
        )
    node = RunningNode(config, port, database_url, process, log, dashboard_port)
    try:
        wait_for_port(port, timeout_s=60)
        yield node
    finally:
        stop(node)


def wait_until_ready(node: RunningNode, timeout_s: float = 90.0) -> None:
    """Until ``cxr serve`` says every part is up (its workers too, not only the SCP's port)."""
    deadline = time.monotonic() + timeout_s
    while "cxr.serve: ready:" not in node.log.read_text(errors="replace"):
        if time.monotonic() > deadline:
            raise TimeoutError(f"the node was not ready within {timeout_s} s")
        time.sleep(0.2)


def stop(node: RunningNode) -> None:
    """SIGTERM to ``cxr serve``, which stops its children; if it has not within a minute, SIGKILL the whole group."""
    if node.process.poll() is None:
        node.process.send_signal(signal.SIGTERM)
        try:
            node.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(node.process.pid, signal.SIGKILL)
            node.process.wait(timeout=10)


def wait_for_files(directory: Path, count: int, timeout_s: float = 30.0) -> list[pydicom.Dataset]:
    """The datasets in ``directory`` once ``count`` complete files are there."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        files = [p for p in directory.iterdir() if p.is_file()] if directory.exists() else []
        if len(files) >= count:
            time.sleep(0.5)  # storescp renames into place; let the last write settle
            return [pydicom.dcmread(p) for p in sorted(directory.iterdir()) if p.is_file()]
        time.sleep(0.2)
    raise TimeoutError(f"{count} objects did not arrive in {directory} within {timeout_s} s")


def start_cxr(command: str, config: Path, log: Path, *extra: str) -> subprocess.Popen[bytes]:
    """One ``cxr`` part (scp, worker, sweeper...) as its own process, as on a scaled-out site."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CXR_")}
    with log.open("ab") as sink:
        return subprocess.Popen(
            [sys.executable, "-m", "cxr", command, *extra, "--config", str(config)],
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=env,
        )


def split_node_config(
    workdir: Path, broker_url: str, scp_port: int, pacs_port: int, worker_toml: str, database_url: str = ""
) -> Path:
    """A configuration for parts started one by one: the given broker and database (default SQLite in
    ``workdir``), one destination."""
    config = workdir / "cxr.toml"
    database = f'database_url = "{database_url}"\n' if database_url else ""
    config.write_text(
        f'data_dir = "{workdir / "var"}"\nbroker_url = "{broker_url}"\n{database}'
        f'[scp]\nhost = "127.0.0.1"\nport = {scp_port}\ncompletion_debounce_s = 0\n'
        f"[worker]\n{worker_toml}\n"
        f'[[destinations]]\nname = "pacs"\nae_title = "PACS"\nhost = "127.0.0.1"\nport = {pacs_port}\n'
    )
    return config


@dataclass
class SplitNode:
    """scp, an io worker and the sweeper, plus a gpu worker the test may kill and restart."""

    config: Path
    log: Path
    parts: list[subprocess.Popen[bytes]]
    gpu: subprocess.Popen[bytes]

    def kill_gpu_worker(self) -> None:
        """SIGKILL mid-work (no warm shutdown, no acknowledgement), then a fresh worker in its place."""
        self.gpu.send_signal(signal.SIGKILL)
        self.gpu.wait()
        self.gpu = start_cxr("worker", self.config, self.log, "--queues", "gpu")


@contextmanager
def split_node(config: Path, log: Path) -> Iterator[SplitNode]:
    parts = [
        start_cxr("scp", config, log),
        start_cxr("worker", config, log, "--queues", "io"),
        start_cxr("sweeper", config, log),
    ]
    node = SplitNode(config, log, parts, start_cxr("worker", config, log, "--queues", "gpu"))
    try:
        yield node
    finally:
        stop_processes([*node.parts, node.gpu])
