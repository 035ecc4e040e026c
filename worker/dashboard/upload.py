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
from datetime import timedelta
from pathlib import Path
from typing import Any

from fastapi import UploadFile
from fastapi.concurrency import run_in_threadpool
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError

from db import repository
from db.models import utcnow
from dicom_node.handlers import Arrival, ingest
from dicom_node.scp import SECONDARY_CAPTURE, STORAGE_SOP_CLASSES, TRANSFER_SYNTAXES
from worker.encode.common import banner_for
from worker.dashboard.services import DashboardServices
from worker.quicklook import detect_file

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
    handle = tempfile.NamedTemporaryFile(dir=directory, prefix="upload-", delete=False)
    size = 0
    with handle:
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


def _file_meta(path: Path) -> Dataset:
    try:
        ds = dcmread(path, stop_before_pixels=True)
    except (InvalidDicomError, OSError, ValueError) as exc:
        raise UploadRejectedError("not a DICOM, PNG or JPEG file") from exc
    if "TransferSyntaxUID" not in ds.file_meta or "SOPClassUID" not in ds or "SOPInstanceUID" not in ds:
        raise UploadRejectedError("a DICOM file needs its file meta information and SOP Class/Instance UIDs")
    return ds


def _ingest_dicom(services: DashboardServices, path: Path) -> UploadOutcome:
    ds = _file_meta(path)
    accepted = (*STORAGE_SOP_CLASSES, *((SECONDARY_CAPTURE,) if services.settings.scp.accept_secondary_capture else ()))
    if ds.SOPClassUID not in accepted:
        raise UploadRejectedError("only CR and DX images are analysed (the SCP accepts no other storage class)")
    if ds.file_meta.TransferSyntaxUID not in TRANSFER_SYNTAXES:
        raise UploadRejectedError(f"transfer syntax {ds.file_meta.TransferSyntaxUID} cannot be decoded here")
    arrival = Arrival(str(ds.SOPClassUID), str(ds.SOPInstanceUID), ds.file_meta.TransferSyntaxUID, UPLOAD_AE_TITLE)
    ingested = ingest(path, arrival, services.node)
    if ingested.study_id is None:
        status = ingested.status
        comment = status.get("ErrorComment", "") if isinstance(status, Dataset) else ""
        code = int(status.Status) if isinstance(status, Dataset) else int(status)
        raise UploadRejectedError(f"refused with DIMSE status 0x{code:04X} {comment}".strip())
    # The whole study arrived in one request: complete it now instead of after the association debounce.
    with services.session_factory.begin() as session:
        repository.schedule_completion(session, [ingested.study_id], utcnow() - timedelta(seconds=1))
    services.completion.run_once()
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
    entry = detect_file(source, out, "image", detector, banner_for(detector.provenance))
    if "error" in entry:
        raise UploadRejectedError(str(entry["error"]))
    entry["file"] = source.name
    (out / "findings.json").write_text(json.dumps({"detector": detector.provenance.name,
                                                   "version": detector.provenance.version, **entry}, indent=2))
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
