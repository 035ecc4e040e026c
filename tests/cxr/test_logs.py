"""cxr.logs: what the entry points configure keeps header values out of logs and warnings, even invalid ones that
pydicom would otherwise quote (it does for an invalid number); Celery's notices that are noise stay out after Celery
sets up its own logging."""

from __future__ import annotations

import logging
import subprocess
import sys
import warnings
from pathlib import Path

import pydicom
import pydicom.config
import pytest

from cxr.logs import RECONNECT_NOTICE, configure_logging
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


RECONNECT_PROBE = """
import sys, warnings
from celery.exceptions import CPendingDeprecationWarning
from celery.worker.consumer.consumer import CANCEL_TASKS_BY_DEFAULT
from config.settings import Settings
from cxr.logs import RECONNECT_NOTICE, configure_logging
from worker.celery_app import create_celery_app

if sys.argv[1] == "configured":
    configure_logging("INFO", "worker")
create_celery_app(Settings(data_dir=sys.argv[2])).log.setup(loglevel="INFO")  # what a worker's start-up runs
warnings.warn(CANCEL_TASKS_BY_DEFAULT, CPendingDeprecationWarning)
warnings.warn("another Celery notice", CPendingDeprecationWarning)
"""


@pytest.mark.parametrize("configured", [True, False])
def test_celerys_reconnect_notice_stays_out_of_a_workers_log_after_celery_sets_up_its_logging(
    tmp_path: Path, configured: bool
) -> None:
    """Celery's own logging set-up, which a worker runs after ours, shows all its notices; the one about cancelling
    tasks on a reconnect stays out (the CI run that found it: a start-up reconnect on the embedded broker)."""
    argv = [sys.executable, "-c", RECONNECT_PROBE, "configured" if configured else "bare", str(tmp_path)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=True)
    log = done.stdout + done.stderr
    assert "another Celery notice" in log, log
    assert (RECONNECT_NOTICE in log) is not configured, log
