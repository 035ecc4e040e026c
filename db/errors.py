"""Errors the repository modules raise, shared by all of them."""

from __future__ import annotations


class NotFoundError(LookupError):
    """A row named by id does not exist."""


def describe_database_error(exc: Exception) -> str:
    """What failed, for a log line: the driver's own first line ("OperationalError: no such table: instance").

    Never the statement or its parameters (SQLAlchemy's own text carries both), nor the driver's DETAIL lines, which
    quote key values. The database holds no patient-identifying attribute, so its messages cannot name one.
    """
    orig = getattr(exc, "orig", None)
    source = orig if isinstance(orig, BaseException) else exc
    lines = str(source).strip().splitlines() if orig is not None else []
    return f"{type(source).__name__}: {lines[0]}" if lines else type(source).__name__
