"""The ``cxr`` console script. Each command builds Settings once and hands it to the part it starts."""

from __future__ import annotations

import re
import signal
import threading
from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import Progress
from rich.table import Table

from config.outputs import DEFAULT_PATIENT_IDENTIFIER_SYSTEM, Destination
from cxr.startup import (
    ConfigOption,
    console,
    dashboard_port,
    load_detector_or_exit,
    load_settings,
    open_database,
    require_current_schema,
    require_ready,
    scp_port,
)

app = typer.Typer(no_args_is_help=True, add_completion=False, help="CXR PACS Worker: a DICOM AI node for chest X-rays.")
db_app = typer.Typer(no_args_is_help=True, help="Database maintenance.")
app.add_typer(db_app, name="db")

TARGET = re.compile(r"^(?P<ae>[^@]{1,16})@(?P<host>[^:]+):(?P<port>\d{1,5})$")


def _target(text: str) -> Destination:
    match = TARGET.match(text)
    if match is None:
        raise typer.BadParameter(f"expected AE@HOST:PORT, got {text!r}")
    return Destination(name=match["ae"], ae_title=match["ae"], host=match["host"], port=int(match["port"]))


@app.command()
def serve(config: ConfigOption = None) -> None:
    """Run everything on one machine: the SCP, the workers, the sweeper and the dashboard. Ctrl-C stops them all."""
    from cxr.health import check_node, ready_line
    from cxr.serve import child_commands, supervise
    from cxr.worker_process import analysis_workers
    from db.migrate import upgrade
    from db.models import utcnow

    settings = load_settings(config, "serve")
    ports = [scp_port(settings), *([dashboard_port(settings)] if settings.dashboard.enabled else [])]
    require_ready(settings, data_dir=True, ports=ports, database=True, broker=True)
    upgrade(settings.database_url)
    started = utcnow()
    commands = child_commands(config, settings.dashboard.enabled, analysis_workers(settings))
    ready = supervise(commands, lambda: check_node(settings, started, echo_scp=False), ready_line(settings))
    raise typer.Exit(ready)


@app.command()
def scp(config: ConfigOption = None) -> None:
    """Run the DICOM listener (C-ECHO, C-STORE) and study completion, in ``scp.processes`` processes."""
    from cxr import scp_process

    settings = load_settings(config, "scp")
    require_ready(settings, data_dir=True, ports=[scp_port(settings)], broker=True)
    require_current_schema(settings)
    scp_process.run(config, settings)


@app.command()
def worker(
    config: ConfigOption = None,
    queues: Annotated[str, typer.Option(help="Comma-separated queues: gpu (analysis), io (delivery).")] = "gpu,io",
    threads: Annotated[
        int, typer.Option(min=0, help="Compute threads (OpenCV, torch) for this worker; 0: every core.")
    ] = 0,
) -> None:
    """Run a Celery worker (solo pool: one process, the model loaded once and kept warm)."""
    from cxr.worker_process import run_worker

    settings = load_settings(config, "worker")
    require_ready(settings, data_dir=True, broker=True)
    require_current_schema(settings)
    run_worker(settings, queues, threads)


@app.command()
def dashboard(config: ConfigOption = None) -> None:
    """Run the admin dashboard (web pages, JSON API under /api/, /metrics) on dashboard.host:dashboard.port."""
    from dashboard.server import serve as serve_dashboard

    settings = load_settings(config, "dashboard")
    require_ready(settings, ports=[dashboard_port(settings)])
    require_current_schema(settings)
    serve_dashboard(settings)


@app.command("hash-password")
def hash_password() -> None:
    """Read a password (not echoed) and print the argon2id hash to put in a dashboard user's password_hash."""
    from dashboard.auth import hash_password as make_hash

    password = typer.prompt("password", hide_input=True, confirmation_prompt=True)
    console.print(make_hash(password), highlight=False, soft_wrap=True)


@app.command()
def sweeper(config: ConfigOption = None) -> None:
    """Send again work whose message or worker was lost, dead-letter jobs that used all their attempts, remind the
    webhooks of unacknowledged critical results, re-send dead letters to a destination that is back (when enabled),
    and apply retention."""
    from db.engine import make_engine, make_session_factory
    from worker.queue import task_queue
    from worker.recovery import resend_on_recovery
    from worker.reminders import send_reminders
    from worker.retention import apply_retention
    from worker.shared_findings import node_findings
    from worker.sweeper import run

    settings = load_settings(config, "sweeper")
    require_ready(settings, broker=True)
    require_current_schema(settings)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    sessions = make_session_factory(make_engine(settings.database_url))
    queue = task_queue(settings, sessions)

    def housekeeping() -> None:
        send_reminders(settings, sessions, queue.enqueue_delivery)
        resend_on_recovery(settings, sessions, queue.enqueue_delivery)
        apply_retention(sessions, settings)
        node_findings(settings).evict()  # early-analysis entries past their hour, on a node that went quiet

    run(stop, sessions, settings.worker, queue.enqueue_analysis, queue.enqueue_delivery, housekeeping)


@app.command()
def detect(
    files: Annotated[list[Path], typer.Argument(help="DICOM, PNG or JPEG files or folders.", exists=True)],
    out: Annotated[Path, typer.Option(help="Output folder for findings.json and overlay PNGs.")],
    detector: Annotated[
        str, typer.Option(help="baseline, xrv:<weights>, torchvision:<checkpoint>, two-stage:<a>+<b>.")
    ] = "baseline",
    weights_dir: Annotated[
        Path | None, typer.Option(help="Weights folder (default: the settings' weights_dir).")
    ] = None,
    device: Annotated[str | None, typer.Option(help="auto, cpu, cuda, cuda:N (default: the settings').")] = None,
    fhir: Annotated[bool, typer.Option("--fhir", help="Also write the FHIR Bundle the node would send.")] = False,
    config: ConfigOption = None,
) -> None:
    """Run the detector on files, without any server; print each file's urgency."""
    from cxr.detect import run_detect
    from models.registry import load_detector
    from worker.context import detector_options

    settings = load_settings(config, "detect")
    options = detector_options(settings)
    options = replace(options, weights_dir=weights_dir or options.weights_dir, device=device or options.device)
    loaded = load_detector_or_exit(lambda: load_detector(detector, options))
    system = (
        (settings.fhir[0].patient_identifier_system if settings.fhir else DEFAULT_PATIENT_IDENTIFIER_SYSTEM)
        if fhir
        else None
    )
    document = run_detect(files, out, loaded, settings.urgency.critical_thresholds, system)
    for image in document["images"]:
        urgency = image.get("urgency", "not_performed")
        labels = f" ({', '.join(image['critical_labels'])})" if image.get("critical_labels") else ""
        colour = "red" if urgency == "critical" else "default"
        console.print(f"[{colour}]{urgency}{labels}[/{colour}]  {Path(image['file']).name}", highlight=False)
    findings = sum(len(i.get("findings", [])) for i in document["images"])
    console.print(f"{len(document['images'])} images, {findings} findings → {out / 'findings.json'}")


@app.command()
def echo(target: Annotated[str, typer.Argument(help="AE@HOST:PORT")], config: ConfigOption = None) -> None:
    """C-ECHO a DICOM peer."""
    from dicom_node.scu import echo as send_echo

    settings = load_settings(config, "echo")
    status = send_echo(_target(target), calling_ae=settings.scp.ae_title)
    if status != 0:
        console.print(f"[red]C-ECHO failed[/red] ({'no association' if status is None else f'status 0x{status:04X}'})")
        raise typer.Exit(1)
    console.print("C-ECHO OK")


@app.command()
def send(
    paths: Annotated[list[Path], typer.Argument(help="DICOM files or folders.", exists=True)],
    to: Annotated[str, typer.Option(help="AE@HOST:PORT")],
    config: ConfigOption = None,
) -> None:
    """C-STORE files to a DICOM peer, with a progress bar."""
    from cxr.detect import expand
    from dicom_node.scu import send_files

    settings = load_settings(config, "send")
    destination = _target(to)
    files = list(expand(paths))
    failed = 0
    with Progress(console=console) as progress:
        task = progress.add_task(f"sending to {destination.ae_title}", total=len(files))
        for path in files:
            outcome = send_files(destination, [path], calling_ae=settings.scp.ae_title)[0]
            failed += 0 if outcome.ok else 1
            if not outcome.ok:
                console.print(f"[red]{path.name}[/red]: {outcome.error}")
            progress.advance(task)
    console.print(f"{len(files) - failed} sent, {failed} failed")
    raise typer.Exit(1 if failed else 0)


@app.command()
def status(config: ConfigOption = None) -> None:
    """Jobs per state, queue depths, work in flight, dead letters and the oldest waiting job."""
    from db.models import JobState, utcnow
    from db.overview import queue_overview
    from worker.celery_app import create_celery_app
    from worker.queue import LANES, TaskQueue

    settings, sessions = open_database(config, "status")
    with sessions() as session:
        overview = queue_overview(session)
    table = Table("state", "jobs")
    for state, count in sorted(overview.jobs_by_state.items()):
        table.add_row(state.value, str(count))
    console.print(table)
    for name, depth in TaskQueue(create_celery_app(settings)).depths().items():
        lane = LANES.get(name, (f"queue {name}", ""))[0]
        console.print(f"{lane} ({name}): {'unknown (broker unreachable)' if depth is None else depth} messages")
    console.print(
        f"in flight: {overview.jobs_by_state.get(JobState.ANALYZING, 0)} analysing, "
        f"{overview.pending_deliveries} deliveries pending"
    )
    console.print(f"dead letters: {overview.jobs_by_state.get(JobState.DEAD_LETTER, 0)}")
    if overview.oldest_waiting_since is not None:
        age = (utcnow() - overview.oldest_waiting_since).total_seconds()
        console.print(f"oldest waiting job: {overview.oldest_waiting_job}, queued {age:.0f} s ago")
    else:
        console.print("oldest waiting job: none")


@app.command()
def healthcheck(
    role: Annotated[
        str, typer.Argument(help="scp (C-ECHO), dashboard (GET /healthz), or node: both, and a ready worker per queue.")
    ] = "scp",
    config: ConfigOption = None,
) -> None:
    """Exit 0 when the local SCP, the dashboard, or the whole node is up: for container HEALTHCHECKs and monitoring."""
    from collections.abc import Callable

    from config.settings import Settings
    from cxr.health import check_dashboard, check_node, check_scp

    settings = load_settings(config, "healthcheck")
    checks: dict[str, Callable[[Settings], str | None]] = {
        "scp": check_scp,
        "dashboard": check_dashboard,
        "node": check_node,
    }
    if role not in checks:
        raise typer.BadParameter(f"expected scp, dashboard or node, got {role!r}")
    problem = checks[role](settings)
    if problem is not None:
        console.print(f"[red]{role} unhealthy:[/red] {problem}")
        raise typer.Exit(1)
    console.print(f"{role} healthy")


@db_app.command("upgrade")
def db_upgrade(config: ConfigOption = None) -> None:
    """Apply Alembic migrations up to the newest schema."""
    from db.migrate import upgrade

    settings = load_settings(config, "db")
    upgrade(settings.database_url)
    console.print("database is at the newest schema")


def _add_operator_commands() -> None:
    from cxr.operator_commands import register
    from cxr.sender_commands import senders_app

    register(app)
    app.add_typer(senders_app, name="senders")


def _add_training_commands() -> None:
    from cxr.model_fetch import fetch_command
    from cxr.training import evaluate_command, model_app, train_app

    model_app.command("fetch")(fetch_command)
    app.add_typer(train_app, name="train")
    app.add_typer(model_app, name="model")
    app.command("evaluate")(evaluate_command)


def _add_validation_commands() -> None:
    from cxr.validation import validate_app

    app.add_typer(validate_app, name="validate")


_add_operator_commands()
_add_training_commands()
_add_validation_commands()


def main() -> None:
    app()
