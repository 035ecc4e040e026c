"""worker.encode.warmup: an analysis worker encodes a synthetic study before it says it is ready, so that its first
real study does not pay for the encoders' first use (``bench/first_study.py`` measures what that saves)."""

from __future__ import annotations

import logging
from pathlib import Path

import pydicom
import pytest

from config.settings import Settings
from db.models import ResultKind
from models.baseline import BaselineDetector
from tests.helpers.peers import dciodvfy_errors
from worker.encode import warmup
from worker.encode.bundle import encode_study


def test_the_warm_up_builds_and_writes_every_kind_of_object() -> None:
    kinds = warmup.warm_up_encoders(Settings(), BaselineDetector().provenance)
    assert kinds == [ResultKind.SR, ResultKind.SC, ResultKind.GSPS, ResultKind.SEG]


def test_the_synthetic_study_is_taken_as_a_real_one(tmp_path: Path) -> None:
    """The warm-up goes the way of a real study, so what it builds is valid DICOM (dciodvfy), the source included,
    and the source carries no patient."""
    source = warmup.synthetic_radiograph()
    source.save_as(tmp_path / "source.dcm", enforce_file_format=True)
    assert str(pydicom.dcmread(tmp_path / "source.dcm").PatientName) == "WARM^UP"
    objects = encode_study(warmup.warm_up_context(Settings(), BaselineDetector().provenance))
    paths = [tmp_path / "source.dcm", *(encoded.write(tmp_path / "results") for encoded in objects)]
    assert {path: dciodvfy_errors(path) for path in paths} == {path: [] for path in paths}


def test_a_warm_up_that_fails_is_logged_and_the_worker_goes_on(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(settings: Settings, provenance: object) -> list[ResultKind]:
        raise ValueError("patient name in here")

    monkeypatch.setattr(warmup, "warm_up_encoders", broken)
    with caplog.at_level(logging.INFO, logger=warmup.__name__):
        warmup.warm_up(Settings(), BaselineDetector().provenance)
    assert "encoders not warmed up: ValueError" in caplog.text and "patient" not in caplog.text
