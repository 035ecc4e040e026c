"""worker.validation.truth_file: the truth CSV is checked whole, and every problem names its line."""

from __future__ import annotations

from pathlib import Path

import pytest

from db.models import TruthValue
from worker.validation.truth_file import TruthFileError, parse_truth

A, B = "1.2.826.0.1.3680043.10.1.1", "1.2.826.0.1.3680043.10.1.2"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "truth.csv"
    path.write_text(text)
    return path


def test_a_wide_file_gives_each_study_and_reader_its_readings(tmp_path: Path) -> None:
    parsed = parse_truth(
        write(tmp_path, f"study_instance_uid,reader,Nodule,mass\n{A},r1,positive,NEGATIVE\n{A},r2,1,\n{B},,u,0\n")
    )
    rows = {(r.study_instance_uid, r.reader): r.values for r in parsed.rows}
    assert rows[(A, "r1")] == {"Nodule": TruthValue.POSITIVE, "Mass": TruthValue.NEGATIVE}
    assert rows[(A, "r2")] == {"Nodule": TruthValue.POSITIVE}, "an empty cell is a label not read"
    assert rows[(B, "")] == {"Nodule": TruthValue.UNCERTAIN, "Mass": TruthValue.NEGATIVE}
    assert parsed.lines == {A: 2, B: 4}


def test_a_long_file_gives_one_reading_a_row(tmp_path: Path) -> None:
    parsed = parse_truth(write(tmp_path, f"study_instance_uid,label,value\n{A},Nodule,positive\n{A},Mass,negative\n"))
    assert [r.values for r in parsed.rows] == [{"Nodule": TruthValue.POSITIVE, "Mass": TruthValue.NEGATIVE}]


@pytest.mark.parametrize(
    ("text", "line", "says"),
    [
        (f"study_instance_uid,Nodule,Nodle\n{A},positive,negative\n", 1, "unknown label 'Nodle'"),
        (
            f"study_instance_uid,label,value\n{A},Nodule,positive\n{B},Nodule,negative\n{B},Pneumothorx,positive\n",
            4,
            "unknown label 'Pneumothorx'",
        ),
        (f"study_instance_uid,Nodule\n{A},positive\n{B},maybe\n", 3, "'maybe' for Nodule is not positive"),
        (f"study_instance_uid,Nodule\n{A},positive\nnot-a-uid,negative\n", 3, "not a valid UID"),
        (f"study_instance_uid,Nodule\n{A},positive\n{A},negative\n", 3, "already given on line 2"),
        (f"study_instance_uid,Nodule\n{A},positive,extra\n", 2, "more cells than the header"),
        ("reader,Nodule\nr1,positive\n", 1, "no study_instance_uid column"),
        ("", 1, "empty"),
        ("study_instance_uid,Nodule\n", 2, "no readings"),
    ],
)
def test_a_malformed_file_is_refused_with_its_line(tmp_path: Path, text: str, line: int, says: str) -> None:
    with pytest.raises(TruthFileError) as raised:
        parse_truth(write(tmp_path, text))
    assert raised.value.line == line and says in str(raised.value), str(raised.value)
    assert str(raised.value).startswith(f"line {line}: ")
