"""``cxr senders``: the senders the SCP has learned to split studies across associations (``dicom_node.senders``),
whose studies wait ``scp.completion_debounce_s`` after each release, and forgetting one (audited), for a sender since
reconfigured to send each study over one association."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape

from cxr.startup import ConfigOption, console, open_database

senders_app = typer.Typer(no_args_is_help=True, help="Senders learned to split studies across associations.")


@senders_app.command("list")
def list_senders(config: ConfigOption = None) -> None:
    """The learned senders and when each was learned."""
    from rich.table import Table

    from db.senders import learned_senders

    _, sessions = open_database(config, "senders")
    with sessions() as session:
        learned = learned_senders(session)
    if not learned:
        console.print("no sender has split a study: every study completes at its association's release")
        return
    table = Table("calling AE title", "learned")
    for title, at in learned:
        table.add_row(escape(title), at.isoformat(timespec="seconds"))
    console.print(table)


@senders_app.command("forget")
def forget(
    calling_ae: Annotated[str, typer.Argument(help="The sender's calling AE title.")], config: ConfigOption = None
) -> None:
    """Let a sender's studies complete at the release again, at once in every SCP process; a split study teaches it
    again."""
    from cxr.operator_commands import cli_actor
    from db import audit
    from db.models import AuditKind
    from db.senders import forget_sender

    _, sessions = open_database(config, "senders")
    with sessions.begin() as session:
        forgotten = forget_sender(session, calling_ae)
        if forgotten:
            detail = "sender forgotten: its studies complete at the release again"
            audit.record_audit(session, AuditKind.OPERATOR_ACTION, calling_ae, None, detail, actor=cli_actor())
    if not forgotten:
        console.print(f"[red]{escape(calling_ae)} is not a learned sender[/red]", highlight=False)
        raise typer.Exit(1)
    console.print(f"{escape(calling_ae)} forgotten: its studies complete at the release again", highlight=False)
