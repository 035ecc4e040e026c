"""The site's truth file: radiologists' readings per study, as CSV, checked whole before anything is stored.

Two layouts, told apart by the header:

- wide, one row per study (and reader): ``study_instance_uid[,reader],<label>,<label>,...``, each label cell
  ``positive``, ``negative`` or ``uncertain`` (also 1, 0, -1; empty: not read);
- long, one row per study and label: ``study_instance_uid,label,value[,reader]``.

Labels are the project's (``models.codes``), in any case. An unknown label, an unknown value, a malformed UID or a
repeated reading is an error that names its line; one error and nothing is imported.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from db.models import TruthValue
from db.validation import TruthRow
from dicom_node.spool import is_valid_uid
from models.codes import FindingLabel

STUDY_COLUMNS = ("study_instance_uid", "studyinstanceuid")
VALUES = {
    "positive": TruthValue.POSITIVE,
    "pos": TruthValue.POSITIVE,
    "1": TruthValue.POSITIVE,
    "negative": TruthValue.NEGATIVE,
    "neg": TruthValue.NEGATIVE,
    "0": TruthValue.NEGATIVE,
    "uncertain": TruthValue.UNCERTAIN,
    "-1": TruthValue.UNCERTAIN,
    "u": TruthValue.UNCERTAIN,
}
LABELS = {label.value.lower(): label.value for label in FindingLabel}


class TruthFileError(ValueError):
    """The file cannot be imported; the message names the line (0: the file as a whole, which names none)."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(f"line {line}: {message}" if line else message)
        self.line = line


@dataclass(frozen=True)
class TruthFile:
    rows: tuple[TruthRow, ...]
    lines: dict[str, int]
    """Each study's first line, for reports about it (a study the node has not received, say)."""


def _label(name: str, line: int) -> str:
    label = LABELS.get(name.strip().lower())
    if label is None:
        raise TruthFileError(line, f"unknown label {name.strip()[:64]!r}; known: {', '.join(sorted(LABELS.values()))}")
    return label


def _value(text: str, label: str, line: int) -> TruthValue | None:
    cleaned = text.strip().lower()
    if not cleaned:
        return None
    value = VALUES.get(cleaned)
    if value is None:
        raise TruthFileError(line, f"{text.strip()[:32]!r} for {label} is not positive, negative or uncertain")
    return value


def _study(text: str, line: int) -> str:
    uid = text.strip()
    if not is_valid_uid(uid):
        raise TruthFileError(line, "the Study Instance UID is missing or not a valid UID")
    return uid


def _reader(text: str | None, line: int) -> str:
    reader = (text or "").strip()
    if len(reader) > 64:
        raise TruthFileError(line, "the reader id is longer than 64 characters")
    return reader


def _records(text: str) -> Iterator[tuple[int, dict[str, str]]]:
    reader = csv.DictReader(io.StringIO(text))
    for record in reader:
        if None in record:
            raise TruthFileError(reader.line_num, "more cells than the header has columns")
        yield reader.line_num, {key.strip().lower(): value or "" for key, value in record.items() if key is not None}


def _columns(header: list[str]) -> tuple[str, bool, list[str]]:
    """(the study column, long layout?, the label columns of a wide file)."""
    names = [name.strip().lower() for name in header]
    study = next((name for name in names if name in STUDY_COLUMNS), None)
    if study is None:
        raise TruthFileError(1, "no study_instance_uid column")
    if len(set(names)) != len(names):
        raise TruthFileError(1, "a column is named twice")
    if "label" in names and "value" in names:
        extra = set(names) - {study, "label", "value", "reader"}
        if extra:
            raise TruthFileError(1, f"unexpected columns beside label and value: {', '.join(sorted(extra))}")
        return study, True, []
    labels = [(name, original) for name, original in zip(names, header, strict=True) if name not in (study, "reader")]
    if not labels:
        raise TruthFileError(1, "no label columns")
    for _, original in labels:
        _label(original, 1)
    return study, False, [name for name, _ in labels]


def parse_truth(path: Path) -> TruthFile:
    """Read and check the whole file; raises ``TruthFileError`` (with the line) at the first problem."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise TruthFileError(0, f"cannot read the file ({type(exc).__name__})") from None
    header = next(csv.reader(io.StringIO(text)), None)
    if not header:
        raise TruthFileError(1, "the file is empty")
    study_column, long, label_columns = _columns(header)
    readings: dict[tuple[str, str], dict[str, TruthValue]] = {}
    seen: dict[tuple[str, str, str], int] = {}
    lines: dict[str, int] = {}
    for line, record in _records(text):
        study = _study(record[study_column], line)
        reader = _reader(record.get("reader"), line)
        lines.setdefault(study, line)
        cells = [(record["label"], record["value"])] if long else [(name, record[name]) for name in label_columns]
        row = readings.setdefault((study, reader), {})
        for name, cell in cells:
            label = _label(name, line)
            value = _value(cell, label, line)
            if value is None:
                continue
            earlier = seen.setdefault((study, reader, label), line)
            if earlier != line:
                raise TruthFileError(line, f"{label} for this study and reader was already given on line {earlier}")
            row[label] = value
    if not readings:
        raise TruthFileError(2, "no readings")
    rows = tuple(TruthRow(study, reader, values) for (study, reader), values in readings.items() if values)
    return TruthFile(rows, lines)
