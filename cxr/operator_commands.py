"""The operator's commands on jobs: requeue, release a shadow result, retract results. Each is audited with the user
who ran it (``cli:<login>``), like the dashboard's actions."""

from __future__ import annotations

from typing import Annotated

import typer

from cxr.startup import ConfigOption, console, load_settings, require_current_schema


def _cli_actor() -> str:
    """Who ran an operator command, for the audit log."""
    import getpass

    return f"cli:{getpass.getuser()}"


def requeue(job_id: int, config: ConfigOption = None) -> None:
    """Analyse a job again (same result UIDs); dead-lettered deliveries are sent again."""
    from db.engine import make_engine, make_session_factory
    from db.errors import NotFoundError
    from worker.operator_actions import NotAllowedError, requeue_job
    from worker.queue import task_queue

    settings = load_settings(config, "requeue")
    require_current_schema(settings)
    try:
        sessions = make_session_factory(make_engine(settings.database_url))
        queue = task_queue(settings, sessions)
        requeue_job(sessions, queue.enqueue_analysis, job_id, settings.worker.queue_lease_s, actor=_cli_actor())
    except (NotFoundError, NotAllowedError) as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from exc
    console.print(f"job {job_id} queued")


def release(job_id: int, config: ConfigOption = None) -> None:
    """Send a result made in shadow mode to the destinations it was withheld from (audited, once)."""
    from db.engine import make_engine, make_session_factory
    from db.errors import NotFoundError
    from worker.operator_actions import NotAllowedError, release_job
    from worker.queue import task_queue

    settings = load_settings(config, "release")
    require_current_schema(settings)
    try:
        sessions = make_session_factory(make_engine(settings.database_url))
        queue = task_queue(settings, sessions)
        sent = release_job(settings, sessions, queue.enqueue_delivery, job_id, actor=_cli_actor())
    except (NotFoundError, NotAllowedError) as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from exc
    console.print(f"job {job_id} released: {sent} deliveries")


def retract(
    job_id: int,
    reason: Annotated[str, typer.Option(help="Why, e.g. 'this model version is withdrawn' (audited).")],
    config: ConfigOption = None,
) -> None:
    """Withdraw a job's results everywhere they went: a rejection KOS, an HL7 correction, FHIR entered-in-error."""
    from db.engine import make_engine, make_session_factory
    from db.errors import NotFoundError
    from db.models import RejectionReason
    from worker.queue import task_queue
    from worker.retraction import NothingToRetractError, retract_job

    settings = load_settings(config, "retract")
    require_current_schema(settings)
    try:
        sessions = make_session_factory(make_engine(settings.database_url))
        queue = task_queue(settings, sessions)
        planned = retract_job(settings, sessions, job_id, RejectionReason.QUALITY, reason, actor=_cli_actor())
    except (NotFoundError, NothingToRetractError) as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from exc
    for delivery_id in planned:
        queue.enqueue_delivery(delivery_id)
    console.print(f"job {job_id} retracted: {len(planned)} deliveries" if planned else f"job {job_id} was retracted")


def register(app: typer.Typer) -> None:
    for command in (requeue, release, retract):
        app.command()(command)
