"""Dashboard render time with a full database: the overview (and friends) with 10,000 jobs, target < 300 ms.

The peer, in the same invocation and on the same server: the static stylesheet (the HTTP stack's floor: uvicorn,
middleware, session check) and the same overview on an empty database. Ratios show what the queries cost.

    .venv/bin/python bench/dashboard.py [--jobs 10000] [--requests 40] [--database-url postgresql+psycopg://...]
"""

from __future__ import annotations

import argparse
import random
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import insert

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from db.engine import make_engine, make_session_factory
from db.migrate import upgrade
from db.models import (
    Delivery,
    DeliveryState,
    Finding,
    Instance,
    Job,
    JobEvent,
    JobState,
    ResultKind,
    ResultObject,
    Study,
    utcnow,
)
from tests.helpers.dashboard import OPERATOR, logged_in, users_toml
from tests.helpers.peers import free_port, wait_for_port

STATES = (
    [JobState.DELIVERED] * 90
    + [JobState.QUEUED] * 4
    + [JobState.FAILED] * 3
    + [JobState.DEAD_LETTER] * 2
    + [JobState.NOT_ELIGIBLE]
)


def fill(database_url: str, jobs: int) -> None:
    """``jobs`` studies, each with an instance, a job (mostly delivered, spread over a day), four events, two
    findings, three result objects and three deliveries."""
    rng = random.Random(7)
    now = utcnow()
    rows: dict[Any, list[dict[str, Any]]] = {
        m: [] for m in (Study, Instance, Job, JobEvent, Finding, ResultObject, Delivery)
    }
    for i in range(1, jobs + 1):
        received = now - timedelta(seconds=rng.uniform(0, 86_400))
        state = rng.choice(STATES)
        done = state not in (JobState.QUEUED,)
        rows[Study].append(
            {
                "id": i,
                "study_instance_uid": f"2.25.{i}",
                "study_description": "CHEST PA",
                "first_received_at": received,
                "last_received_at": received,
            }
        )
        rows[Instance].append(
            {
                "id": i,
                "study_id": i,
                "sop_instance_uid": f"2.25.9{i}",
                "sop_class_uid": "1.2.840.10008.5.1.4.1.1.1",
                "series_instance_uid": f"2.25.8{i}",
                "transfer_syntax_uid": "1.2.840.10008.1.2.1",
                "modality": "CR",
                "body_part_examined": "CHEST",
                "view_position": "PA",
                "calling_ae_title": "PACS",
                "spool_path": f"/spool/{i}.dcm",
                "received_at": received,
            }
        )
        analysis = rng.uniform(0.4, 3.0)
        rows[Job].append(
            {
                "id": i,
                "study_id": i,
                "state": state,
                "detector": "baseline",
                "attempts": 1,
                "created_at": received,
                "updated_at": received,
                "reason": "bench" if state is JobState.FAILED else None,
                "analysis_started_at": received,
                "analysis_seconds": analysis if done else None,
                "finished_at": received + timedelta(seconds=analysis + 1) if done else None,
                "end_to_end_seconds": analysis + 1 if done else None,
            }
        )
        for k, event in enumerate((JobState.QUEUED, JobState.ANALYZING, JobState.ENCODED, state)):
            rows[JobEvent].append({"job_id": i, "state": event, "detail": None, "at": received + timedelta(seconds=k)})
        for _ in range(2):
            rows[Finding].append(
                {
                    "job_id": i,
                    "instance_id": i,
                    "label": "Nodule",
                    "code_scheme": "SCT",
                    "code_value": "27925004",
                    "code_meaning": "Nodule",
                    "probability": rng.random(),
                    "x_min": 1.0,
                    "y_min": 1.0,
                    "x_max": 9.0,
                    "y_max": 9.0,
                }
            )
        for k, kind in enumerate(ResultKind):
            result_id = (i - 1) * 3 + k + 1
            rows[ResultObject].append(
                {
                    "id": result_id,
                    "job_id": i,
                    "kind": kind,
                    "sop_class_uid": "1.2",
                    "sop_instance_uid": f"2.25.{i}{k}00",
                    "series_instance_uid": "2.25.1",
                    "path": f"/results/{result_id}.dcm",
                    "created_at": received,
                }
            )
            rows[Delivery].append(
                {
                    "result_object_id": result_id,
                    "destination_name": "pacs",
                    "attempts": 1,
                    "state": DeliveryState.SENT if state is JobState.DELIVERED else DeliveryState.PENDING,
                    "updated_at": received,
                }
            )
    engine = make_engine(database_url)
    with make_session_factory(engine).begin() as session:
        for model, values in rows.items():
            for start in range(0, len(values), 5000):
                session.execute(insert(model), values[start : start + 5000])
    engine.dispose()


def serve(directory: Path, database_url: str) -> tuple[subprocess.Popen[bytes], int]:
    """``cxr dashboard`` as its own process, as deployed."""
    port = free_port()
    config = directory / "cxr.toml"
    config.write_text(
        f'data_dir = "{directory}"\ndatabase_url = "{database_url}"\nlog_level = "WARNING"\n'
        f"[dashboard]\nport = {port}\n{users_toml(OPERATOR)}\n"
    )
    process = subprocess.Popen([sys.executable, "-m", "cxr", "dashboard", "--config", str(config)])
    wait_for_port(port, timeout_s=60)
    return process, port


def timings(client: httpx.Client, path: str, requests: int) -> tuple[float, float]:
    """(p50, p95) in milliseconds, after two warm-up requests."""
    headers = {"Accept": "text/html"}
    for _ in range(2):
        client.get(path, headers=headers).raise_for_status()
    samples = []
    for _ in range(requests):
        start = time.perf_counter()
        client.get(path, headers=headers).raise_for_status()
        samples.append((time.perf_counter() - start) * 1000)
    samples.sort()
    return statistics.median(samples), samples[int(0.95 * (len(samples) - 1))]


def measure(directory: Path, database_url: str, jobs: int, requests: int) -> dict[str, tuple[float, float]]:
    upgrade(database_url)
    if jobs:
        started = time.perf_counter()
        fill(database_url, jobs)
        print(f"  filled {jobs} jobs in {time.perf_counter() - started:.1f} s")
    process, port = serve(directory, database_url)
    try:
        client = logged_in(f"http://127.0.0.1:{port}", OPERATOR)
        paths = ["/static/dashboard.css", "/", "/api/overview", "/studies", "/studies?state=FAILED", "/metrics"]
        return {path: timings(client, path, requests) for path in paths}
    finally:
        process.terminate()
        process.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=40)
    parser.add_argument("--database-url", default="", help="empty: a temporary SQLite file (the embedded default)")
    args = parser.parse_args()
    results = {}
    for label, jobs in (("empty", 0), (f"{args.jobs} jobs", args.jobs)):
        with tempfile.TemporaryDirectory() as directory:
            url = args.database_url or f"sqlite:///{directory}/cxr.sqlite"
            if args.database_url and jobs:
                print("  (PostgreSQL: the database must be empty before each run)")
            print(f"{label}:")
            results[label] = measure(Path(directory), url, jobs, args.requests)
    full, empty = results[f"{args.jobs} jobs"], results["empty"]
    floor = full["/static/dashboard.css"][0]
    print(f"\n{'path':28} {'empty p50':>10} {'full p50':>10} {'full p95':>10} {'÷ static':>9}")
    for path in full:
        print(
            f"{path:28} {empty[path][0]:9.1f}ms {full[path][0]:9.1f}ms {full[path][1]:9.1f}ms "
            f"{full[path][0] / floor:8.1f}×"
        )
    verdict = "met" if full["/"][1] < 300 else "NOT met"
    print(f"\noverview with {args.jobs} jobs: p95 {full['/'][1]:.0f} ms; target < 300 ms {verdict}")


if __name__ == "__main__":
    main()
