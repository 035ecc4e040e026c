"""Soak under faults: N one-image studies (half JPEG 2000) over K associations into a node on Redis and PostgreSQL
(the SCP, an analysis worker, a delivery worker and the sweeper as separate processes), while M analysis and delivery
workers are killed with SIGKILL (and started again), Redis is killed and restarted R times, and the destination
(DCMTK storescp) is down for S seconds. Then: were all instances kept, were all result objects delivered, and
exactly once? Peer in the same run: the same studies with no fault, and the ratio of the two drain times.

    .venv/bin/python bench/faults.py --studies 200 --associations 4 --kills 10 --broker-restarts 3 --outage-s 120

Leases are short (analysis 10 s, queue 5 s, sweep 1 s) so that lost work is found in seconds. The delivery retry
schedule is the default one (12 retries, base 2 s, capped at 300 s), so the outage is ridden out as a site would; the
delivery lease (how long before the sweeper sends again a delivery whose worker died) must outlast the cap, so it is
310 s. ``--backoff-max-s 20`` compresses both for a short run (CI). Exit status 1 when anything is lost, not delivered
in time, or duplicated beyond the one object a killed delivery worker may have had in flight (delivery is at least
once; the copy is the same SOP Instance, byte for byte).
"""

from __future__ import annotations

import argparse
import copy
import itertools
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pydicom
from pydicom.data import get_testdata_file
from sqlalchemy import func, select

from db.engine import SessionFactory
from db.models import Instance, JobState
from tests.helpers.databases import postgres_database
from tests.helpers.encode_cases import derived_uid
from tests.helpers.flow import job_states, node_database
from tests.helpers.node import start_cxr, stop_processes
from tests.helpers.peers import free_port, require_tool, wait_for_port
from tests.helpers.redis_server import RedisServer, redis_server

WORKER_TOML = "queue_lease_s = 5.0\nanalysis_lease_s = 10.0\nsweep_interval_s = 1.0\nmax_attempts = 12\n"


def worker_toml(backoff_max_s: float) -> str:
    """Short leases; the delivery lease just outlasts the longest backoff (the settings refuse less)."""
    return WORKER_TOML + f"delivery_backoff_max_s = {backoff_max_s}\ndelivery_lease_s = {backoff_max_s + 10}\n"


@dataclass
class Destination:
    """storescp that can be taken down and brought back on the same port, logging every reception."""

    directory: Path
    receptions: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        command = ["storescp", "-aet", "PACS", "+xa", "-od", str(self.directory)]
        command += ["--exec-on-reception", f"echo #f >> {self.receptions}", str(self.port)]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_port(self.port)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


@dataclass
class Node:
    port: int
    config: Path
    log: Path
    parts: list[subprocess.Popen[bytes]]
    workers: dict[str, subprocess.Popen[bytes]]

    def kill(self, queue: str) -> None:
        """SIGKILL the worker of ``queue`` (no warm shutdown, no acknowledgement) and start a fresh one."""
        self.workers[queue].send_signal(signal.SIGKILL)
        self.workers[queue].wait()
        self.workers[queue] = start_cxr("worker", self.config, self.log, "--queues", queue)


@contextmanager
def node(workdir: Path, broker_url: str, database_url: str, pacs_port: int, backoff_max_s: float) -> Iterator[Node]:
    scp_port = free_port()
    config = workdir / "cxr.toml"
    config.write_text(
        f'data_dir = "{workdir / "var"}"\nbroker_url = "{broker_url}"\ndatabase_url = "{database_url}"\n'
        f'[scp]\nhost = "127.0.0.1"\nport = {scp_port}\ncompletion_debounce_s = 0\n'
        f"[worker]\n{worker_toml(backoff_max_s)}"
        f'[[destinations]]\nname = "pacs"\nae_title = "PACS"\nhost = "127.0.0.1"\nport = {pacs_port}\n'
    )
    log = workdir / "node.log"
    parts = [start_cxr("scp", config, log), start_cxr("sweeper", config, log)]
    workers = {q: start_cxr("worker", config, log, "--queues", q) for q in ("gpu", "io")}
    running = Node(scp_port, config, log, parts, workers)
    try:
        wait_for_port(scp_port, timeout_s=60)
        yield running
    finally:
        stop_processes([*running.parts, *running.workers.values()])


def studies(directory: Path, count: int, tag: str) -> list[Path]:
    """``count`` one-image studies: even ones RG1 uncompressed, odd ones RG1 as JPEG 2000 (RG1_J2KR)."""
    directory.mkdir(parents=True, exist_ok=True)
    sources = [pydicom.dcmread(str(get_testdata_file(name))) for name in ("RG1_UNCR.dcm", "RG1_J2KR.dcm")]
    paths = []
    for i in range(count):
        ds = copy.deepcopy(sources[i % 2])
        ds.StudyInstanceUID = derived_uid(f"{tag}-study", str(i))
        ds.SeriesInstanceUID = derived_uid(f"{tag}-series", str(i))
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = derived_uid(f"{tag}-instance", str(i))
        paths.append(directory / f"{i:04d}.dcm")
        ds.save_as(paths[-1], enforce_file_format=True)
    return paths


STORESCU_BOUNDED = ["storescu", "-xv", "-to", "30", "-ta", "30", "-td", "60"]
"""storescu with bounded waits (DCMTK waits for ever by default), so that an SCP that stopped answering fails its sender
instead of hanging the run."""


def send(port: int, files: list[Path], associations: int) -> list[subprocess.Popen[bytes]]:
    """One storescu per association, each with its share of the files, all at once; each file is proposed in its
    own transfer syntax (-xv proposes JPEG 2000 lossless too), so JPEG 2000 goes as JPEG 2000."""
    shares = [files[i::associations] for i in range(associations)]
    return [
        subprocess.Popen([*STORESCU_BOUNDED, "-aec", "CXR_AI", "127.0.0.1", str(port), *map(str, share)])
        for share in shares
        if share
    ]


@dataclass
class Plan:
    kills: int
    broker_restarts: int
    outage_s: float
    backoff_max_s: float = 300.0
    injected: list[str] = field(default_factory=list)


@dataclass
class Chaos:
    """What the fault thread acts on."""

    running: Node
    redis: RedisServer
    pacs: Destination
    sessions: SessionFactory
    stop: threading.Event = field(default_factory=threading.Event)


def inject(plan: Plan, chaos: Chaos) -> None:
    """The faults, spread over the busy phase: kills alternate analysis and delivery workers, each while some of
    its work is in flight; the broker restarts and the outage come between them."""
    events = [("kill", q) for q, _ in zip(itertools.cycle(["gpu", "io"]), range(plan.kills), strict=False)]
    events += [("broker", "")] * plan.broker_restarts
    if plan.outage_s > 0:
        events.insert(len(events) // 2, ("outage", ""))
    busy = {"gpu": JobState.ANALYZING, "io": JobState.ENCODED}
    for kind, queue in events:
        if chaos.stop.wait(2.0):
            return
        if kind == "kill":
            deadline = time.monotonic() + 30
            while busy[queue] not in job_states(chaos.sessions) and time.monotonic() < deadline:
                time.sleep(0.05)
            chaos.running.kill(queue)
            plan.injected.append(f"kill -9 {'analysis' if queue == 'gpu' else 'delivery'} worker")
        elif kind == "broker":
            chaos.redis.restart(3.0)
            plan.injected.append("Redis kill -9, 3 s down, restarted")
        else:
            chaos.pacs.stop()
            chaos.stop.wait(plan.outage_s)
            chaos.pacs.start()
            plan.injected.append(f"destination down {plan.outage_s:.0f} s")


@dataclass(frozen=True)
class Outcome:
    studies: int
    recorded: int
    delivered_jobs: int
    receptions: int
    distinct: int
    seconds: float

    @property
    def lost(self) -> int:
        return 3 * self.studies - self.distinct

    @property
    def duplicated(self) -> int:
        return self.receptions - self.distinct


def run(workdir: Path, files: list[Path], associations: int, plan: Plan, timeout_s: float) -> Outcome:
    receptions = workdir / "receptions.log"
    with ExitStack() as stack:
        redis = stack.enter_context(redis_server(workdir / "redis"))
        database_url = stack.enter_context(postgres_database())
        sessions = stack.enter_context(node_database(database_url))
        pacs = Destination(workdir / "pacs", receptions)
        pacs.start()
        stack.callback(pacs.stop)
        running = stack.enter_context(node(workdir, redis.url, database_url, pacs.port, plan.backoff_max_s))
        chaos = Chaos(running, redis, pacs, sessions)
        faults = threading.Thread(target=inject, args=(plan, chaos), daemon=True)
        started = time.monotonic()
        senders = send(running.port, files, associations)
        faults.start()
        failed_senders = sum(sender.wait(timeout=timeout_s) != 0 for sender in senders)
        deadline = started + timeout_s
        while job_states(sessions).count(JobState.DELIVERED) < len(files) and time.monotonic() < deadline:
            time.sleep(0.5)
        seconds = time.monotonic() - started
        chaos.stop.set()
        faults.join(timeout=plan.outage_s + 30)
        time.sleep(5)  # any duplicate delivery would arrive now
        with sessions() as session:
            recorded = int(session.scalar(select(func.count()).select_from(Instance)) or 0)
        delivered = job_states(sessions).count(JobState.DELIVERED)
    lines = receptions.read_text().split() if receptions.exists() else []
    distinct = {pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID for p in (workdir / "pacs").iterdir()}
    if failed_senders:
        print(f"  {failed_senders} storescu sender(s) failed")
    return Outcome(len(files), recorded, delivered, len(lines), len(distinct), seconds)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--studies", type=int, default=20)
    parser.add_argument("--associations", type=int, default=2)
    parser.add_argument("--kills", type=int, default=2)
    parser.add_argument("--broker-restarts", type=int, default=1)
    parser.add_argument("--outage-s", type=float, default=10.0)
    parser.add_argument("--timeout-s", type=float, default=1800.0)
    parser.add_argument("--backoff-max-s", type=float, default=300.0, help="the default; 20 compresses a short run")
    parser.add_argument("--no-peer", action="store_true")
    args = parser.parse_args()
    for tool in ("storescp", "storescu", "redis-server"):
        require_tool(tool)
    root = Path(tempfile.mkdtemp(prefix="cxr-faults-"))
    files = studies(root / "studies", args.studies, "faults")
    plan = Plan(args.kills, args.broker_restarts, args.outage_s, args.backoff_max_s)
    faulty = run(root / "faults", files, args.associations, plan, args.timeout_s)
    print(
        f"faults: {args.studies} studies ({args.studies // 2} JPEG 2000) over {args.associations} associations, "
        f"Redis + PostgreSQL; delivery backoff capped at {args.backoff_max_s:g} s; "
        f"injected: {len(plan.injected)} faults"
    )
    for fault in plan.injected:
        print(f"  {fault}")
    print(
        f"instances acknowledged {args.studies}, recorded {faulty.recorded}; jobs delivered {faulty.delivered_jobs}\n"
        f"result objects expected {3 * args.studies}, received {faulty.distinct} distinct in {faulty.receptions} "
        f"receptions: lost {faulty.lost}, duplicated {faulty.duplicated}\n"
        f"drained {faulty.seconds:.0f} s after the first C-STORE"
    )
    if not args.no_peer:
        peer_files = studies(root / "peer-studies", args.studies, "peer")
        calm = run(root / "peer", peer_files, args.associations, Plan(0, 0, 0, args.backoff_max_s), args.timeout_s)
        print(
            f"peer, the same studies without faults: drained {calm.seconds:.0f} s, lost {calm.lost}, duplicated "
            f"{calm.duplicated}; ratio faults / no faults {faulty.seconds / calm.seconds:.2f}"
        )
    # Delivery is at least once: a delivery worker killed after the destination stored an object and before the
    # database recorded it sends that object again (the same SOP Instance, byte for byte), so each such kill may
    # duplicate at most the one object it had in flight. Anything more is a defect, as is any loss.
    allowed = sum(fault == "kill -9 delivery worker" for fault in plan.injected)
    print(f"duplicates allowed: {allowed} (at most one per delivery worker killed mid-send)")
    ok = faulty.recorded == args.studies and faulty.lost == 0 and faulty.duplicated <= allowed
    ok = ok and faulty.delivered_jobs == args.studies
    if ok:
        subprocess.run(["rm", "-rf", str(root)], check=False)
    else:
        print(f"kept for a look: {root} (node.log, receptions.log and the destination's files of each run)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
