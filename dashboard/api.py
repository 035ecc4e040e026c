"""The JSON API under /api/ (schema at /api/openapi.json) and the operator actions, shared with the pages' forms.

An action is a POST that needs the operator role and the session's CSRF token, and is written to the audit log. A form
submission (which asks for HTML) is redirected back to its page; an API client gets JSON.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request, status
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from dashboard import phi, queries
from dashboard.auth import User, check_csrf, current_user, require_operator
from dashboard.model_page import ModelInfo, model_info
from dashboard.search import JobFilter
from dashboard.services import DashboardServices
from dashboard.view_models import OverviewState, StudyState, job_page, overview_state, study_state
from db import audit
from db.audit import AuditRecord
from db.models import JobState, RejectionReason, Urgency
from db.urgency import AcknowledgementError, acknowledge
from worker.operator_actions import (
    NotAllowedError,
    cancel_job,
    release_job,
    requeue_job,
    resend_delivery,
    set_destination_paused,
)
from worker.retraction import NothingToRetractError, retract_job

router = APIRouter(prefix="/api")
Viewer = Annotated[User, Depends(current_user)]


def services_of(request: Request) -> DashboardServices:
    services: DashboardServices = request.app.state.services
    return services


Services = Annotated[DashboardServices, Depends(services_of)]


def operator(user: Viewer) -> User:
    require_operator(user)
    return user


async def acting_operator(request: Request, user: Annotated[User, Depends(operator)]) -> User:
    """A state-changing request: logged in (else 401), an operator (else 403), and carrying the CSRF token
    (else 403)."""
    await check_csrf(request)
    return user


Operator = Annotated[User, Depends(acting_operator)]


@dataclass(frozen=True)
class ActionResult:
    ok: bool
    detail: str


@router.get("/overview")
def get_overview(user: Viewer, services: Services) -> OverviewState:
    return overview_state(services)


@router.get("/jobs")
def get_jobs(
    user: Viewer,
    services: Services,
    page: int = 1,
    state: JobState | None = None,
    detector: str | None = None,
    urgency: Urgency | None = None,
    study: str = "",
    received_from: date | None = None,
    received_to: date | None = None,
    calling_ae: str = "",
) -> queries.JobPage:
    """Newest first. ``study`` is a Study Instance UID or an Accession Number (matched by its keyed digest); the
    dates are local days, both included."""
    search = JobFilter(state, detector, urgency, study, received_from, received_to, calling_ae)
    return job_page(services, page, search)


@router.get("/studies/{study_id}")
def get_study(study_id: int, user: Viewer, services: Services) -> StudyState:
    return study_state(services, study_id)


@router.get("/model")
def get_model(user: Viewer, services: Services) -> ModelInfo:
    return model_info(services)


@router.get("/audit")
def get_audit(user: Annotated[User, Depends(operator)], services: Services, limit: int = 100) -> list[AuditRecord]:
    with services.session_factory() as session:
        return audit.audit_trail(session, min(limit, 1000))


def _done(request: Request, detail: str, back: str) -> Response:
    if "text/html" in request.headers.get("accept", ""):
        return RedirectResponse(back, status.HTTP_303_SEE_OTHER)
    return JSONResponse(asdict(ActionResult(True, detail)))


def _study_page(services: DashboardServices, job_id: int) -> str:
    with services.session_factory() as session:
        return f"/studies/{queries.study_of_job(session, job_id)}"


def _run(action: object) -> None:
    try:
        action()  # type: ignore[operator]
    except NotAllowedError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc


@router.post("/jobs/{job_id}/requeue", response_model=ActionResult)
def post_requeue(job_id: int, request: Request, user: Operator, services: Services) -> Response:
    _run(
        lambda: requeue_job(
            services.session_factory,
            services.queue.enqueue_analysis,
            job_id,
            services.settings.worker.queue_lease_s,
            actor=user.name,
        )
    )
    return _done(request, f"job {job_id} queued", _study_page(services, job_id))


@router.post("/jobs/{job_id}/cancel", response_model=ActionResult)
def post_cancel(job_id: int, request: Request, user: Operator, services: Services) -> Response:
    _run(lambda: cancel_job(services.session_factory, job_id, actor=user.name))
    return _done(request, f"job {job_id} cancelled", _study_page(services, job_id))


@router.post("/jobs/{job_id}/acknowledge", response_model=ActionResult)
def post_acknowledge(job_id: int, request: Request, user: Operator, services: Services) -> Response:
    """An operator confirms that someone has been told of this critical result; the first acknowledgement stands."""
    try:
        with services.session_factory.begin() as session:
            first = acknowledge(session, job_id, user.name)
    except AcknowledgementError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc
    detail = f"job {job_id} acknowledged" if first else f"job {job_id} was already acknowledged"
    return _done(request, detail, _study_page(services, job_id))


async def _reason(request: Request) -> str:
    """The operator's reason, from the form field or a JSON body's "reason"."""
    if request.headers.get("content-type", "").startswith("application/json"):
        body = await request.json()
        value = body.get("reason") if isinstance(body, dict) else None
    else:
        value = (await request.form()).get("reason")
    reason = value.strip() if isinstance(value, str) else ""
    if not reason:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_ENTITY, "a retraction needs a reason")
    return reason[:200]


@router.post("/jobs/{job_id}/retract", response_model=ActionResult)
async def post_retract(job_id: int, request: Request, user: Operator, services: Services) -> Response:
    """Withdraw a job's results everywhere they went, with a rejection KOS (audited; asked twice, sent once)."""
    why = await _reason(request)
    try:
        planned = await run_in_threadpool(
            retract_job, services.settings, services.session_factory, job_id, RejectionReason.QUALITY, why, user.name
        )
    except NothingToRetractError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc
    for delivery_id in planned:
        services.queue.enqueue_delivery(delivery_id)
    detail = f"job {job_id} retracted; {len(planned)} deliveries" if planned else f"job {job_id} was already retracted"
    return _done(request, detail, _study_page(services, job_id))


@router.post("/jobs/{job_id}/release", response_model=ActionResult)
def post_release(job_id: int, request: Request, user: Operator, services: Services) -> Response:
    """Send a shadow result to the destinations it was withheld from (audited, once)."""
    sent: list[int] = []
    _run(
        lambda: sent.append(
            release_job(services.settings, services.session_factory, services.queue.enqueue_delivery, job_id, user.name)
        )
    )
    return _done(request, f"job {job_id} released: {sent[0]} deliveries", _study_page(services, job_id))


@router.post("/deliveries/{delivery_id}/resend", response_model=ActionResult)
def post_resend(delivery_id: int, request: Request, user: Operator, services: Services) -> Response:
    _run(
        lambda: resend_delivery(services.session_factory, services.queue.enqueue_delivery, delivery_id, actor=user.name)
    )
    with services.session_factory() as session:
        back = f"/studies/{queries.study_of_delivery(session, delivery_id)}"
    return _done(request, f"delivery {delivery_id} queued", back)


def _set_paused(name: str, paused: bool, request: Request, user: User, services: DashboardServices) -> Response:
    if name not in {d.name for d in services.settings.destinations}:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no destination named {name!r}")
    sent = set_destination_paused(services.session_factory, services.queue.enqueue_delivery, name, paused, user.name)
    return _done(request, f"{name} {'paused' if paused else f'resumed; {sent} deliveries sent'}", "/")


@router.post("/destinations/{name}/pause", response_model=ActionResult)
def post_pause(name: str, request: Request, user: Operator, services: Services) -> Response:
    return _set_paused(name, True, request, user, services)


@router.post("/destinations/{name}/resume", response_model=ActionResult)
def post_resume(name: str, request: Request, user: Operator, services: Services) -> Response:
    return _set_paused(name, False, request, user, services)


@router.post("/studies/{study_id}/reveal")
def post_reveal(study_id: int, request: Request, user: Operator, services: Services) -> phi.PatientIdentity:
    client = request.client.host if request.client else None
    return phi.reveal_identity(services, study_id, user, client)
