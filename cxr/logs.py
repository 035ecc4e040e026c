"""Logging is configured here, in entry points only; modules just call ``logging.getLogger(__name__)``."""

from __future__ import annotations

import logging
import warnings

import pydicom.config


def configure_logging(level: str, process: str) -> None:
    logging.basicConfig(
        level=level.upper(),
        format=f"%(asctime)s %(levelname)s {process}[%(process)d] %(name)s: %(message)s",
        force=True,
    )
    # pynetdicom logs dataset identifiers (patient name and ID) at DEBUG and INFO: keep it to warnings.
    logging.getLogger("pynetdicom").setLevel(logging.WARNING)
    # highdicom logs source SOP Instance UIDs at INFO while copying modules.
    logging.getLogger("highdicom").setLevel(logging.WARNING)
    # Alembic announces each of its plugins at INFO whenever a migration script directory is read.
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
    # highdicom's person-name check quotes the name itself (Referring Physician's Name): never let it reach a log.
    warnings.filterwarnings("ignore", message=r"The string .* is unlikely to represent", category=UserWarning)
    # pydicom reports an invalid header value by quoting it (a birth date, a name) in a log line and a warning. Our own
    # checks say which attribute was unusable, by keyword, where it matters (worker.encode.trusted).
    pydicom.config.settings.reading_validation_mode = pydicom.config.IGNORE
    silence_celery_reconnect_notice()


RECONNECT_NOTICE = "worker_cancel_long_running_tasks_on_connection_loss"


def _not_the_reconnect_notice(record: logging.LogRecord) -> bool:
    return RECONNECT_NOTICE not in record.getMessage()


def silence_celery_reconnect_notice() -> None:
    """Celery warns at every broker reconnect that a future version will cancel running tasks; the node chose to keep
    them (worker.celery_app says why), so the notice is noise. A worker's Celery set-up later puts an "always" filter
    for its own warnings ahead of this one and sends warnings to the ``py.warnings`` logger, so that logger drops the
    notice too."""
    warnings.filterwarnings("ignore", message=rf"(?s).*{RECONNECT_NOTICE}")
    logging.getLogger("py.warnings").addFilter(_not_the_reconnect_notice)
