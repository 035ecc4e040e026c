"""The operator's commands on jobs: requeue, release a shadow result, retract results. Each is audited with the user
who ran it (``cli:<login>``), like the dashboard's actions."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from cxr.startup import ConfigOption, console, open_database


def cli_actor() -> str:
    """Who ran an operator command, for the audit log."""
    import getpass

    return f"cli:{getpass.getuser()}"


def _run_action(process: str, config: Path | None, action: Callable[..., str]) -> None:
    """Settings, the schema check, a session factory and the queue for ``action``; its refusal is one red line and
    exit 1, its success one line."""
    from db.errors import NotFoundError
    from worker.operator_actions import NotAllowedError
    from worker.queue import task_queue
    from worker.retraction import NothingToRetractError

    settings, sessions = open_database(config, process)
    try:
        done = action(settings, sessions, task_queue(settings, sessions))
    except (NotFoundError, NotAllowedError, NothingToRetractError) as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from exc
    console.print(done)


def requeue(job_id: int, config: ConfigOption = None) -> None:
    """Analyse a job again (same result UIDs); dead-lettered deliveries are sent again."""
    from worker.operator_actions import requeue_job

    def action(settings: Any, sessions: Any, queue: Any) -> str:
        requeue_job(sessions, queue.enqueue_analysis, job_id, settings.worker.queue_lease_s, actor=cli_actor())
        return f"job {job_id} queued"

    _run_action("requeue", config, action)


def release(job_id: int, config: ConfigOption = None) -> None:
    """Send a result made in shadow mode to the destinations it was withheld from (audited, once)."""
    from worker.operator_actions import release_job

    def action(settings: Any, sessions: Any, queue: Any) -> str:
        sent = release_job(settings, sessions, queue.enqueue_delivery, job_id, actor=cli_actor())
        return f"job {job_id} released: {sent} deliveries"

    _run_action("release", config, action)


def retract(
    job_id: int,
    reason: Annotated[str, typer.Option(help="Why, e.g. 'this model version is withdrawn' (audited).")],
    config: ConfigOption = None,
) -> None:
    """Withdraw a job's results everywhere they went: a rejection KOS, an HL7 correction, FHIR entered-in-error."""
    from db.models import RejectionReason
    from worker.retraction import retract_job

    def action(settings: Any, sessions: Any, queue: Any) -> str:
        planned = retract_job(settings, sessions, job_id, RejectionReason.QUALITY, reason, actor=cli_actor())
        for delivery_id in planned:
            queue.enqueue_delivery(delivery_id)
        return f"job {job_id} retracted: {len(planned)} deliveries" if planned else f"job {job_id} was retracted"

    _run_action("retract", config, action)


def register(app: typer.Typer) -> None:
    for command in (requeue, release, retract):
        app.command()(command)
