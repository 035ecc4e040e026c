"""``cxr model fetch``: an admin's explicit download of published weights, checked against a pinned sha256 and kept in
``model.weights_dir``; ``--from`` takes a copy brought in by hand. The node itself never downloads."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

from cxr.startup import ConfigOption, console, fail, load_settings
from models.catalog import PublishedWeights, published
from models.fetch import DigestMismatchError, copy_in, download, file_sha256

TRANSFER_FAILED = 1


def _expected_sha256(entry: PublishedWeights, given: str | None) -> str:
    if given is not None and entry.sha256 is not None and given.lower() != entry.sha256:
        raise fail("not fetched", f"--sha256 disagrees with the digest pinned for {entry.name} ({entry.sha256})")
    expected = entry.sha256 or given
    if expected is None:
        raise fail(
            "not fetched",
            f"no sha256 is pinned for {entry.name} in this version: give --sha256 with the digest from a source you "
            "trust (a file that cannot be checked is never kept)",
        )
    if len(expected) != 64 or any(c not in "0123456789abcdefABCDEF" for c in expected):
        raise fail("not fetched", "--sha256 takes 64 hexadecimal digits")
    return expected.lower()


def _with_progress(url: str, destination: Path, sha256: str) -> Path:
    columns = (BarColumn(), DownloadColumn(), TransferSpeedColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task(destination.name, total=None)
        return download(
            url, destination, sha256, lambda done, total: progress.update(task, completed=done, total=total)
        )


def fetch_command(
    name: Annotated[str, typer.Argument(help="Published weights, e.g. densenet121-res224-all (xrv: may be written).")],
    to: Annotated[Path | None, typer.Option("--to", help="Folder (default: the settings' model.weights_dir).")] = None,
    source: Annotated[
        Path | None,
        typer.Option("--from", exists=True, help="A copy brought in by hand: the file, or a folder holding it."),
    ] = None,
    mirror: Annotated[str | None, typer.Option(help="A site mirror's base URL; the file name is appended.")] = None,
    sha256: Annotated[str | None, typer.Option(help="The digest to check where this version pins none.")] = None,
    config: ConfigOption = None,
) -> None:
    """Download published weights from their known address (resumable), check the sha256, store them."""
    settings = load_settings(config, "model")
    try:
        entry = published(name)
    except ValueError as exc:
        raise fail("not fetched", exc) from exc
    expected = _expected_sha256(entry, sha256)
    destination = (to or settings.weights_dir) / entry.file
    if destination.is_file() and file_sha256(destination) == expected:
        console.print(f"{destination} is already there (sha256 {expected})", soft_wrap=True, highlight=False)
        return
    try:
        if source is not None:
            copy_in(source / entry.file if source.is_dir() else source, destination, expected)
        else:
            url = f"{mirror.rstrip('/')}/{entry.file}" if mirror else entry.url
            _with_progress(url, destination, expected)
    except DigestMismatchError as exc:
        raise fail("refused", exc) from exc
    except OSError as exc:
        kept = "what arrived is kept; the same command resumes"
        console.print(f"[red]not fetched:[/red] {escape(str(exc))} ({kept})", soft_wrap=True, highlight=False)
        raise typer.Exit(TRANSFER_FAILED) from exc
    console.print(f"stored {destination} (sha256 {expected})", soft_wrap=True, highlight=False)
    console.print(f'set detector = "{entry.detector}" in the workers\' configuration')
