"""Upload and analyse, for people trying the node without a PACS.

A DICOM file goes through exactly what a C-STORE goes through (validation, fsynced spool, database row) and then
becomes a job the workers pick up, so it appears in the queue like any study. A PNG or JPEG file has no study to
belong to: the configured detector runs on it here and the overlay and findings are kept under ``uploads/``.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import UploadFile
from fastapi.concurrency import run_in_threadpool
from pydicom.dataset import Dataset

from dashboard.services import DashboardServices
from dicom_node.ingest import Arrival, UnreadableFileError, ingest
from worker.detect_file import detect_file
from worker.encode.banner import banner_for

logger = logging.getLogger(__name__)

UPLOAD_AE_TITLE = "DASHBOARD"
CHUNK_BYTES = 1 << 20
TOKEN = re.compile(r"^[0-9a-f]{32}$")
RASTER_MAGIC = {b"\x89PNG\r\n\x1a\n": ".png", b"\xff\xd8\xff": ".jpg"}


class UploadRejectedError(ValueError):
    """The file is not something the node can analyse; the message says why."""


@dataclass(frozen=True)
class UploadOutcome:
    study_id: int | None = None
    """Set for a DICOM upload: the study page shows its job."""
    token: str | None = None
    """Set for a PNG/JPEG upload: ``uploads/<token>`` holds the overlay and findings."""


async def _save(upload: UploadFile, directory: Path, limit: int) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    size = 0
    with tempfile.NamedTemporaryFile(dir=directory, prefix="upload-", delete=False) as handle:
        while chunk := await upload.read(CHUNK_BYTES):
            size += len(chunk)
            if size > limit:
                handle.close()
                Path(handle.name).unlink(missing_ok=True)
                raise UploadRejectedError(f"file larger than the {limit // (1024 * 1024)} MiB upload limit")
            handle.write(chunk)
    return Path(handle.name)


def _raster_suffix(path: Path) -> str | None:
    head = path.open("rb").read(8)
    return next((suffix for magic, suffix in RASTER_MAGIC.items() if head.startswith(magic)), None)


async def accept_upload(services: DashboardServices, upload: UploadFile) -> UploadOutcome:
    incoming = services.settings.spool_dir / ".incoming"
    path = await _save(upload, incoming, services.settings.dashboard.upload_max_bytes)
    try:
        suffix = _raster_suffix(path)
        # Detection and the fsynced ingest block: they run in the thread pool, not on the event loop.
        if suffix is not None:
            return await run_in_threadpool(_analyse_raster, services, path, suffix)
        return await run_in_threadpool(_ingest_dicom, services, path)
    finally:
        path.unlink(missing_ok=True)  # adopted files were renamed away; anything left here is not needed


def _ingest_dicom(services: DashboardServices, path: Path) -> UploadOutcome:
    """Exactly what a C-STORE goes through; the study is complete on arrival and becomes a job at once."""
    try:
        arrival = Arrival.from_file_meta(path, UPLOAD_AE_TITLE)
    except UnreadableFileError as exc:
        raise UploadRejectedError("not a DICOM, PNG or JPEG file") from exc
    ingested = ingest(path, arrival, services.node)
    if ingested.study_id is None:
        status = ingested.status
        comment = status.get("ErrorComment", "") if isinstance(status, Dataset) else ""
        code = int(status.Status) if isinstance(status, Dataset) else int(status)
        raise UploadRejectedError(f"refused with DIMSE status 0x{code:04X} {comment}".strip())
    return UploadOutcome(study_id=ingested.study_id)


def uploads_dir(services: DashboardServices) -> Path:
    return services.settings.data_dir / "uploads"


def _analyse_raster(services: DashboardServices, path: Path, suffix: str) -> UploadOutcome:
    detector = services.detector()
    token = secrets.token_hex(16)
    out = uploads_dir(services) / token
    out.mkdir(parents=True)
    source = out / f"source{suffix}"
    source.write_bytes(path.read_bytes())
    thresholds = services.settings.urgency.critical_thresholds
    entry = detect_file(source, out, "image", detector, banner_for(detector.provenance), thresholds)
    if "error" in entry:
        raise UploadRejectedError(str(entry["error"]))
    entry["file"] = source.name
    (out / "findings.json").write_text(
        json.dumps({"detector": detector.provenance.name, "version": detector.provenance.version, **entry}, indent=2)
    )
    logger.info("raster upload analysed: %d findings", len(entry["findings"]))
    return UploadOutcome(token=token)


def raster_result(services: DashboardServices, token: str) -> tuple[Path, dict[str, Any]] | None:
    """The folder and findings of a PNG/JPEG upload; None for a malformed or unknown token."""
    if not TOKEN.match(token):
        return None
    folder = uploads_dir(services) / token
    findings = folder / "findings.json"
    if not findings.is_file():
        return None
    return folder, json.loads(findings.read_text())
