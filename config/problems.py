"""Configuration problems, reported all at once, one line each: where (the file or the environment variable), which key
(dotted, as in the TOML), what is wrong, and a "did you mean" for a near miss. Values are never repeated: a
configuration holds passwords and tokens."""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

ENV_PREFIX = "CXR_"
NESTING = "__"
NOT_SETTINGS = frozenset({"CXR_CONFIG"})
"""``CXR_*`` variables that are not settings keys."""


class ConfigurationError(ValueError):
    """The configuration cannot be used; ``problems`` holds one line per problem."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(self.problems))


def _model_of(annotation: Any) -> type[BaseModel] | None:
    """The settings model a field holds (itself, or inside ``X | None``), if any."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        models = [m for m in map(_model_of, typing.get_args(annotation)) if m is not None]
        return models[0] if models else None
    return None


def _suggestion(key: str, model: type[BaseModel]) -> str:
    close = difflib.get_close_matches(key, list(model.model_fields), n=1, cutoff=0.6)
    return f" (did you mean {close[0]}?)" if close else ""


def unknown_environment(environ: Mapping[str, str], model: type[BaseModel]) -> list[str]:
    """``CXR_*`` variables whose first key names no setting: pydantic-settings would ignore them silently. (A wrong key
    further down, ``CXR_SCP__PROT``, reaches its table, which refuses it like a wrong key in the file.)"""
    problems = []
    for name in sorted(environ):
        if not name.startswith(ENV_PREFIX) or name in NOT_SETTINGS:
            continue
        key = name[len(ENV_PREFIX) :].lower().split(NESTING)[0]
        if key not in model.model_fields:
            problems.append(f"environment {name}: {key}: unknown key{_suggestion(key, model)}")
    return problems


def _model_at(model: type[BaseModel], loc: Sequence[int | str]) -> type[BaseModel] | None:
    current: type[BaseModel] | None = model
    for key in loc:
        if current is None:
            return None
        if isinstance(key, int):
            continue
        field = current.model_fields.get(key)
        if field is None:
            return None
        annotation = field.annotation
        args = typing.get_args(annotation)
        current = _model_of(annotation) or next((m for m in map(_model_of, args) if m is not None), None)
    return current


def _in_file(values: Mapping[str, Any], loc: Sequence[int | str]) -> bool:
    node: Any = values
    for key in loc:
        try:
            node = node[key]
        except (KeyError, IndexError, TypeError):
            return False
    return True


def _sentence(message: str) -> str:
    """pydantic's message as a clause: its own "Value error, " prefix dropped and the first letter lowered; the rest
    keeps its case (a time zone, a path or a label named in it)."""
    message = message.removeprefix("Value error, ")
    return message[:1].lower() + message[1:]


def describe(error: ValidationError, model: type[BaseModel], path: Path | None, values: Mapping[str, Any]) -> list[str]:
    """One line per validation error, naming the file or the environment variable that set the key."""
    problems = []
    for item in error.errors():
        loc = [part for part in item["loc"] if isinstance(part, (int, str))]
        dotted = ".".join(f"[{p}]" if isinstance(p, int) else p for p in loc).replace(".[", "[")
        variable = ENV_PREFIX + NESTING.join(str(p) for p in loc).upper()
        where = f"{path}" if path is not None and _in_file(values, loc) else f"environment {variable}"
        if item["type"] == "extra_forbidden":
            parent = _model_at(model, loc[:-1])
            hint = _suggestion(str(loc[-1]), parent) if parent is not None else ""
            problems.append(f"{where}: {dotted}: unknown key{hint}")
        else:
            problems.append(f"{where}: {dotted}: {_sentence(item['msg'])}")
    return problems
