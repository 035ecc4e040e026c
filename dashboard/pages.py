"""Server-rendered pages: overview, studies, study detail (with the PHI reveal), upload, model and audit trail."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import cv2
import numpy as np
from fastapi import APIRouter, Depends, File, HTTPException, Request, UploadFile, status
from fastapi.responses import FileResponse, RedirectResponse, Response
from pydicom import dcmread

from dashboard import phi, queries
from dashboard.api import Operator, Services, Viewer, operator
from dashboard.auth import User
from dashboard.model_page import model_info
from dashboard.render import render
from dashboard.search import JobFilter, parse_date
from dashboard.upload import UploadRejectedError, accept_upload, raster_result
from dashboard.view_models import STATE_LEGEND, job_page, overview_charts, overview_state, study_state
from db.audit import audit_trail
from db.models import JobState, Urgency
from worker.queue import LANES

logger = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False)


@router.get("/")
def overview(request: Request, user: Viewer, services: Services) -> Response:
    state = overview_state(services)
    return render(request, "overview.html", {"o": state, "charts": overview_charts(state), "lanes": LANES})


@router.get("/studies")
def studies(
    request: Request,
    user: Viewer,
    services: Services,
    page: int = 1,
    state: str = "",
    detector: str = "",
    urgency: str = "",
    study: str = "",
    received_from: str = "",
    received_to: str = "",
    calling_ae: str = "",
) -> Response:
    search = JobFilter(
        state=JobState(state) if state in JobState.__members__ else None,
        detector=detector or None,
        urgency=Urgency(urgency) if urgency in {u.value for u in Urgency} else None,
        study=study[:64],
        received_from=parse_date(received_from),
        received_to=parse_date(received_to),
        calling_ae=calling_ae[:16],
    )
    with services.session_factory() as session:
        detectors = queries.detectors_in_use(session)
    listing = job_page(services, page, search)
    return render(
        request,
        "studies.html",
        {
            "page": listing,
            "states": list(JobState),
            "urgencies": list(Urgency),
            "detectors": detectors,
            "search": search.query_string(),
            "legend": STATE_LEGEND,
        },
    )


@router.get("/studies/{study_id}")
def study(study_id: int, request: Request, user: Viewer, services: Services) -> Response:
    return render(request, "study.html", {"s": study_state(services, study_id), "identity": None})


@router.post("/studies/{study_id}/reveal")
def reveal(study_id: int, request: Request, user: Operator, services: Services) -> Response:
    client = request.client.host if request.client else None
    identity = phi.reveal_identity(services, study_id, user, client)
    return render(request, "study.html", {"s": study_state(services, study_id), "identity": identity})


def _png(pixels: np.ndarray) -> Response:
    if pixels.ndim == 3:
        pixels = cv2.cvtColor(pixels, cv2.COLOR_RGB2BGR)
    ok, encoded = cv2.imencode(".png", pixels)
    if not ok:
        raise HTTPException(status.HTTP_500_INTERNAL_SERVER_ERROR, "image could not be encoded")
    return Response(encoded.tobytes(), media_type="image/png")


@router.get("/results/{result_id}/image.png")
def result_image(result_id: int, user: Viewer, services: Services) -> Response:
    """The overlay Secondary Capture as a PNG: what the radiologist sees in the viewer."""
    with services.session_factory() as session:
        _, kind, path = queries.result_object_path(session, result_id)
    if kind != "SC" or not Path(path).is_file():
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no overlay image for this result")
    return _png(dcmread(path).pixel_array)


@router.get("/upload")
def upload_form(request: Request, user: Viewer) -> Response:
    return render(request, "upload.html", {"error": None})


@router.post("/upload")
async def upload(request: Request, user: Operator, services: Services, file: Annotated[UploadFile, File()]) -> Response:
    try:
        outcome = await accept_upload(services, file)
    except UploadRejectedError as exc:
        return render(request, "upload.html", {"error": str(exc)}, status.HTTP_422_UNPROCESSABLE_CONTENT)
    target = f"/studies/{outcome.study_id}" if outcome.study_id is not None else f"/uploads/{outcome.token}"
    return RedirectResponse(target, status.HTTP_303_SEE_OTHER)


@router.get("/uploads/{token}")
def upload_result(token: str, request: Request, user: Viewer, services: Services) -> Response:
    found = raster_result(services, token)
    if found is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such upload")
    return render(request, "upload_result.html", {"token": token, "result": found[1]})


@router.get("/uploads/{token}/overlay.png")
def upload_overlay(token: str, user: Viewer, services: Services) -> Response:
    found = raster_result(services, token)
    if found is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such upload")
    return FileResponse(found[0] / found[1]["overlay"], media_type="image/png")


@router.get("/model")
def model(request: Request, user: Viewer, services: Services) -> Response:
    return render(request, "model.html", {"m": model_info(services)})


@router.get("/audit")
def audit(request: Request, user: Annotated[User, Depends(operator)], services: Services) -> Response:
    with services.session_factory() as session:
        trail = audit_trail(session, 200)
    return render(request, "audit.html", {"trail": trail})
