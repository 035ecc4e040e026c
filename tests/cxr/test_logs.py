"""cxr.logs: what the entry points configure keeps header values out of logs and warnings, even invalid ones that
pydicom would otherwise quote (it does for an invalid number)."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import pydicom
import pydicom.config
import pytest

from cxr.logs import configure_logging
from tests.helpers.mutations import mutate


def test_an_invalid_header_value_is_quoted_in_no_log_and_no_warning(
    tmp_path: Path, rg1_dataset: pydicom.Dataset, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pydicom.config.settings, "reading_validation_mode", pydicom.config.WARN)
    path = tmp_path / "bad.dcm"
    mutate(rg1_dataset, "InstanceNumber", b"ZZ19XX").save_as(path, enforce_file_format=True)
    with warnings.catch_warnings(record=True) as before, caplog.at_level(logging.DEBUG):
        warnings.simplefilter("always")
        assert pydicom.dcmread(path).InstanceNumber == "ZZ19XX"
    assert any("ZZ19XX" in str(w.message) for w in before), "without the configuration pydicom quotes the value"
    caplog.clear()
    configure_logging("DEBUG", "test")
    with warnings.catch_warnings(record=True) as after, caplog.at_level(logging.DEBUG):
        warnings.simplefilter("always")
        assert pydicom.dcmread(path).InstanceNumber == "ZZ19XX"
    assert not any("ZZ19XX" in str(w.message) for w in after)
    assert "ZZ19XX" not in caplog.text
