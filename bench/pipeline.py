"""The whole pipeline, C-STORE in to results stored at a DCMTK storescp, on both stacks with 1 analysis worker and
with as many as ``cxr serve`` starts here (``worker.analysis_processes = 0``: one per core up to 4 on the CPU).

For each stack (embedded: kombu's SQLite broker and SQLite; production: Redis and PostgreSQL) and worker count, the
parts run as separate processes (``cxr scp``, ``cxr worker --queues io``, ``cxr sweeper`` and N × ``cxr worker
--queues gpu --threads T``, T each worker's share of the cores, as ``cxr serve`` gives it), with the baseline
detector:

- **throughput**: N studies (default 50, one RG1 instance each) sent at once over one association; studies per
  minute from the first instance received to the last result stored;
- **latency**: M studies (default 20) sent one at a time, each after the previous one's results arrived; end to end
  is from the study's last instance committed (``study.last_received_at``: after its bytes were received and fsynced)
  to the last of its three result objects written by storescp (file modification time). p50 and p95.

The peer, in the same invocation: the same pipeline functions called directly (``analyze_job`` then
``deliver_conversation`` for each destination, same database kind, same storescp), per study. The difference between
the two medians is what the queue, the separate processes and the completion check cost a study.

    .venv/bin/python bench/pipeline.py [--studies 50] [--latency-studies 20] [--completion defaults,debounce-0]
        [--stacks embedded,production] [--workers 1,serve]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pydicom
from pydicom.data import get_testdata_file

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from config.settings import Settings
from cxr.worker_process import analysis_processes, threads_each
from dashboard.metrics_queries import study_receipt_times
from db import jobs
from db.conversations import conversation_leaders
from db.engine import SessionFactory, make_engine, make_session_factory
from db.migrate import upgrade
from db.models import JobState
from tests.helpers.databases import postgres_database, redis_broker
from tests.helpers.flow import write_copies
from tests.helpers.node import split_node_config, start_cxr, stop_processes
from tests.helpers.peers import free_port, storescp, wait_for_port
from tests.helpers.pipeline import context_for, record, with_pacs
from worker.analyze import analyze_job
from worker.deliver import deliver_conversation

WORKER_TOML = "queue_lease_s = 30.0\nanalysis_lease_s = 60.0\nsweep_interval_s = 5.0"


def studies(directory: Path, count: int, tag: str) -> list[Path]:
    """``count`` one-instance studies, each RG1 with its own UIDs."""
    return write_copies(pydicom.dcmread(str(get_testdata_file("RG1_UNCR.dcm"))), directory, count, f"bench-{tag}")


def store(port: int, files: list[Path]) -> None:
    result = subprocess.run(
        ["storescu", "-aec", "CXR_AI", "127.0.0.1", str(port), *map(str, files)], capture_output=True, text=True
    )
    if result.returncode != 0:
        raise RuntimeError(f"storescu failed: {result.stderr[-300:]}")


def arrivals(pacs: Path) -> dict[str, float]:
    """Study UID → when its last result object was written at the destination."""
    last: dict[str, float] = {}
    for path in pacs.iterdir():
        uid = str(pydicom.dcmread(path, stop_before_pixels=True).StudyInstanceUID)
        last[uid] = max(last.get(uid, 0.0), path.stat().st_mtime)
    return last


def received(sessions: SessionFactory) -> dict[str, float]:
    """Study UID → when its last instance was committed."""
    with sessions() as session:
        return {uid: at.timestamp() for uid, at in study_receipt_times(session).items()}


def wait_delivered(sessions: SessionFactory, count: int, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with sessions() as session:
            if [j.state for j in jobs.list_jobs(session)].count(JobState.DELIVERED) >= count:
                return
        time.sleep(0.05)
    raise TimeoutError(f"{count} studies not delivered within {timeout_s} s")


@contextmanager
def node(stack: str, workers: int, root: Path, pacs_port: int, completion: str) -> Iterator[tuple[int, str]]:
    """The parts as separate processes; yields (SCP port, database URL)."""
    with ExitStack() as cleanup:
        if stack == "embedded":
            broker, database_url = "", f"sqlite:///{root / 'var' / 'cxr.sqlite'}"
        else:
            broker, database_url = redis_broker("bench"), cleanup.enter_context(postgres_database())
        port = free_port()
        config = split_node_config(root, broker, port, pacs_port, WORKER_TOML, database_url)
        if completion == "defaults":  # the shipped completion settings: learned senders, the default debounce
            config.write_text(config.read_text().replace("completion_debounce_s = 0\n", ""))
        upgrade(database_url)
        log = root / "node.log"
        parts = [
            start_cxr("scp", config, log),
            start_cxr("worker", config, log, "--queues", "io"),
            start_cxr("sweeper", config, log),
        ]
        threads = str(threads_each(workers))
        parts += [start_cxr("worker", config, log, "--queues", "gpu", "--threads", threads) for _ in range(workers)]
        try:
            wait_for_port(port, timeout_s=60)
            time.sleep(8)  # the workers load the detector and connect to the broker
            yield port, database_url
        finally:
            stop_processes(parts)


def run_stack(stack: str, workers: int, completion: str, arguments: argparse.Namespace, root: Path) -> dict[str, float]:
    pacs = root / "pacs"
    with storescp(pacs) as pacs_port, node(stack, workers, root, pacs_port, completion) as (port, url):
        engine = make_engine(url)
        sessions = make_session_factory(engine)
        burst = studies(root / "burst", arguments.studies, f"{stack}-{workers}-burst")
        started = time.perf_counter()
        store(port, burst)
        wait_delivered(sessions, len(burst), timeout_s=600)
        per_minute = len(burst) / (time.perf_counter() - started) * 60
        latencies = []
        for path in studies(root / "single", arguments.latency_studies, f"{stack}-{workers}-single"):
            before = len(list(pacs.iterdir()))
            store(port, [path])
            wait_delivered(sessions, len(burst) + len(latencies) + 1, timeout_s=120)
            while len(list(pacs.iterdir())) < before + 3:
                time.sleep(0.01)
            uid = str(pydicom.dcmread(path, stop_before_pixels=True).StudyInstanceUID)
            time.sleep(0.05)  # storescp closes the file it renamed into place
            latencies.append(arrivals(pacs)[uid] - received(sessions)[uid])
        engine.dispose()
    return {"per_minute": per_minute, **percentiles(latencies)}


def percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {"p50": statistics.median(ordered), "p95": ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]}


def run_direct(arguments: argparse.Namespace, root: Path) -> dict[str, float]:
    """The peer: analyse and deliver each study by calling the pipeline functions, no queue, one process."""
    with storescp(root / "pacs") as pacs_port:
        settings: Settings = with_pacs(root, pacs_port)
        upgrade(settings.database_url)
        engine = make_engine(settings.database_url)
        sessions = make_session_factory(engine)
        context = context_for(settings, sessions)
        times = []
        for path in studies(root / "direct", arguments.latency_studies, "direct"):
            job_id = record(sessions, settings, path)
            started = time.perf_counter()
            outcome = analyze_job(context, job_id)
            with sessions() as session:
                leaders = conversation_leaders(session, outcome.delivery_ids)
            for delivery_id in leaders:
                deliver_conversation(context, delivery_id)
            times.append(time.perf_counter() - started)
        engine.dispose()
    return percentiles(times)


def worker_counts(text: str) -> list[int]:
    """``--workers``: numbers, and ``serve`` for what ``worker.analysis_processes = 0`` starts on this CPU."""
    serve = analysis_processes(Settings(), "cpu")
    return list(dict.fromkeys(serve if word == "serve" else int(word) for word in text.split(",")))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--studies", type=int, default=50)
    parser.add_argument("--latency-studies", type=int, default=20)
    parser.add_argument(
        "--completion",
        default="defaults,debounce-0",
        help="completion settings to run: 'defaults' (as shipped), 'debounce-0' (every study complete at its release)",
    )
    parser.add_argument("--stacks", default="embedded,production")
    parser.add_argument(
        "--workers", default="1,serve", help="analysis workers to run with; serve: as many as cxr serve starts here"
    )
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        direct = run_direct(arguments, Path(folder) / "direct")
        print(
            f"direct call (analyze_job + deliver_conversation, SQLite): p50 {direct['p50']:.3f} s, "
            f"p95 {direct['p95']:.3f} s per study"
        )
        print("baseline detector\n")
        print(
            "| completion | stack | analysis workers | studies/min (burst of "
            f"{arguments.studies}) | e2e p50 s | e2e p95 s | p50 − direct p50 s |"
        )
        print("|---|---|---|---|---|---|---|")
        for completion in arguments.completion.split(","):
            for stack in arguments.stacks.split(","):
                for workers in worker_counts(arguments.workers):
                    where = Path(folder) / f"{completion}-{stack}-{workers}"
                    found = run_stack(stack, workers, completion, arguments, where)
                    print(
                        f"| {completion} | {stack} | {workers} | {found['per_minute']:.1f} | {found['p50']:.3f} "
                        f"| {found['p95']:.3f} | {found['p50'] - direct['p50']:.3f} |",
                        flush=True,
                    )


if __name__ == "__main__":
    main()
