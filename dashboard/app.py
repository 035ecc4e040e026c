"""The dashboard application: FastAPI with server-rendered pages, a JSON API under /api/, /metrics and /healthz.

Every page and API call needs a logged-in session, except /login and /healthz (and /metrics with its bearer token
when one is configured). Nothing changes state on a GET.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Annotated

from fastapi import FastAPI, Form, Request, status
from fastapi.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.sessions import SessionMiddleware

from atna.events import user_authentication
from atna.messages import Outcome
from dashboard import api, pages
from dashboard.auth import (
    LoginRequired,
    bearer_matches,
    check_csrf,
    current_user,
    log_in,
    session_secret,
)
from dashboard.metrics import CONTENT_TYPE, NodeCollector, exposition
from dashboard.render import render, set_time_zone
from dashboard.services import DashboardServices
from db import audit, jobs
from db.errors import NotFoundError
from db.models import AuditKind, utcnow

logger = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).parent / "static"
FORM_OVERHEAD_BYTES = 64 * 1024  # multipart boundaries and the CSRF field around an upload
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "frame-ancestors 'none'; form-action 'self'",
}


def create_app(services: DashboardServices) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        services.start()
        yield
        services.stop()

    app = FastAPI(
        title="CXR PACS Worker",
        version="1",
        lifespan=lifespan,
        docs_url="/api/docs",
        redoc_url=None,
        openapi_url="/api/openapi.json",
    )
    app.state.services = services
    dashboard = services.settings.dashboard
    set_time_zone(dashboard.time_zone)
    app.add_middleware(
        SessionMiddleware,
        secret_key=session_secret(services.settings),
        session_cookie="cxr_session",
        max_age=dashboard.session_max_age_s,
        same_site="strict",
        https_only=dashboard.secure_cookies,
    )
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    _add_handlers(app, dashboard.upload_max_bytes + FORM_OVERHEAD_BYTES)
    _add_login(app, services)
    app.include_router(pages.router)
    app.include_router(api.router)
    return app


def _add_handlers(app: FastAPI, body_limit: int) -> None:
    @app.middleware("http")
    async def security_headers(request: Request, call_next):  # type: ignore[no-untyped-def]
        declared = request.headers.get("content-length", "0")
        if not declared.isdigit() or int(declared) > body_limit:
            # Refused before anything reads the body (the form parser would spool it all to disk first).
            return JSONResponse({"detail": "request body too large"}, status.HTTP_413_CONTENT_TOO_LARGE)
        response: Response = await call_next(request)
        response.headers.update(SECURITY_HEADERS)
        response.headers.setdefault("Cache-Control", "no-store")
        return response

    @app.exception_handler(LoginRequired)
    async def login_required(request: Request, exc: LoginRequired) -> Response:
        if request.url.path.startswith(("/api/", "/metrics")):
            return JSONResponse(
                {"detail": "login required"},
                status.HTTP_401_UNAUTHORIZED,
                headers={"WWW-Authenticate": 'Bearer realm="cxr"'},
            )
        return RedirectResponse(f"/login?next={request.url.path}", status.HTTP_303_SEE_OTHER)

    @app.exception_handler(NotFoundError)
    async def not_found(request: Request, exc: NotFoundError) -> Response:
        return JSONResponse({"detail": str(exc)}, status.HTTP_404_NOT_FOUND)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if request.url.path.startswith("/api/") or "text/html" not in request.headers.get("accept", ""):
            return JSONResponse({"detail": exc.detail}, exc.status_code)
        return render(request, "error.html", {"status": exc.status_code, "detail": exc.detail}, exc.status_code)


def _safe_next(target: str | None) -> str:
    """Only a local path: an open redirect after login would help phishing."""
    return target if target and target.startswith("/") and not target.startswith("//") else "/"


def _throttled(services: DashboardServices, name: str, address: str | None) -> bool:
    """Too many recent failures for this name, or from this address: refuse before checking the password."""
    dashboard = services.settings.dashboard
    since = utcnow() - timedelta(seconds=dashboard.login_lockout_s)
    with services.session_factory() as session:
        by_name = audit.recent_login_failures(session, since, actor=name)
        by_address = audit.recent_login_failures(session, since, address=address) if address else 0
    return max(by_name, by_address) >= dashboard.login_max_failures


def _add_login(app: FastAPI, services: DashboardServices) -> None:
    @app.get("/healthz", include_in_schema=False)
    def healthz() -> PlainTextResponse:
        with services.session_factory() as session:
            jobs.job_counts_by_state(session)  # the database answers
        return PlainTextResponse("ok")

    @app.get("/metrics", include_in_schema=False)
    def metrics(request: Request) -> Response:
        if not bearer_matches(request, services.settings.dashboard):
            current_user(request)
        return Response(
            exposition(NodeCollector(services.session_factory, services.depths.get, services.settings.drift)),
            media_type=CONTENT_TYPE,
        )

    @app.get("/login", include_in_schema=False)
    def login_form(request: Request, next: str = "/") -> Response:
        return render(request, "login.html", {"next": _safe_next(next), "error": None})

    @app.post("/login", include_in_schema=False)
    async def login(
        request: Request,
        username: Annotated[str, Form()],
        password: Annotated[str, Form()],
        next: Annotated[str, Form()] = "/",
    ) -> Response:
        await check_csrf(request)
        client = request.client.host if request.client else None
        if _throttled(services, username[:64], client):
            with services.session_factory.begin() as session:
                audit.record_audit(session, AuditKind.LOGIN_THROTTLED, None, client, None, actor=username[:64])
            services.audit_login(username[:64], client, Outcome.SERIOUS_FAILURE, "throttled: too many failed logins")
            logger.warning("dashboard login throttled from %s", client)
            wait = int(services.settings.dashboard.login_lockout_s)
            return render(
                request,
                "login.html",
                {"next": _safe_next(next), "error": f"Too many failed logins. Try again in {wait // 60} minutes."},
                status.HTTP_429_TOO_MANY_REQUESTS,
            )
        user = services.authenticator.verify(username, password)
        if user is None:
            with services.session_factory.begin() as session:
                audit.record_audit(session, AuditKind.LOGIN_FAILED, None, client, None, actor=username[:64])
            services.audit_login(username[:64], client, Outcome.MINOR_FAILURE, "wrong name or password")
            logger.warning("dashboard login failed from %s", client)
            return render(
                request,
                "login.html",
                {"next": _safe_next(next), "error": "Wrong name or password."},
                status.HTTP_401_UNAUTHORIZED,
            )
        log_in(request, user)
        with services.session_factory.begin() as session:
            audit.record_audit(session, AuditKind.LOGIN_SUCCEEDED, None, client, user.role.value, actor=user.name)
        services.audit_login(user.name, client, Outcome.SUCCESS)
        logger.info("dashboard login: %s (%s)", user.name, user.role.value)
        return RedirectResponse(_safe_next(next), status.HTTP_303_SEE_OTHER)

    @app.post("/logout", include_in_schema=False)
    async def logout(request: Request) -> Response:
        await check_csrf(request)
        name = request.session.get("user")
        if isinstance(name, str):
            client = request.client.host if request.client else None
            with services.session_factory.begin() as session:
                audit.record_audit(session, AuditKind.LOGOUT, None, client, None, actor=name[:64])
            services.audit(
                user_authentication(name[:64], client, services.application, login=False, outcome=Outcome.SUCCESS)
            )
        request.session.clear()
        return RedirectResponse("/login", status.HTTP_303_SEE_OTHER)
