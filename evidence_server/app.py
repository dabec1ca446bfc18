"""The FastAPI application factory."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from urllib.parse import quote

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import HTTPException, RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from sqlalchemy import text
from sqlalchemy.exc import DataError, OperationalError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from evidence_server.accounts.router import router as accounts_router
from evidence_server.admin.router import router as admin_router
from evidence_server.audit.router import router as audit_router
from evidence_server.background.scheduler import Scheduler
from evidence_server.cases.playback import router as playback_router
from evidence_server.cases.router import routers as cases_routers
from evidence_server.compliance.router import router as compliance_router
from evidence_server.compliance.tasks import install as rescan_after_commits
from evidence_server.config import Settings, get_settings
from evidence_server.context import ServerContext
from evidence_server.dbadmin import maintenance_warnings
from evidence_server.docks.router import router as docks_router
from evidence_server.ledger.router import routers as ledger_routers
from evidence_server.limits import BodyLimit
from evidence_server.observability.router import router as metrics_router
from evidence_server.openapi_errors import install as document_errors
from evidence_server.proxies import TrustedProxies
from evidence_server.push.router import routers as push_routers
from evidence_server.recordings.router import router as recordings_router
from evidence_server.retention.router import router as retention_router
from evidence_server.security import public
from evidence_server.stations.router import router as stations_router
from evidence_server.transfers.router import router as transfers_router
from evidence_server.uploads.router import router as uploads_router

log = logging.getLogger(__name__)


SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
    (
        b"content-security-policy",
        b"default-src 'self'; img-src 'self' data:; media-src 'self' blob:; style-src 'self'; "
        b"script-src 'self'; frame-ancestors 'none'",
    ),
]


class SecurityHeaders:
    """Adds security headers to every response. Plain ASGI: it never touches request bodies, so
    uploads stream at full speed (BaseHTTPMiddleware halves upload throughput)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {k.lower() for k, _ in message.get("headers", [])}
                message["headers"] = list(message.get("headers", [])) + [
                    (k, v) for k, v in SECURITY_HEADERS if k not in present
                ]
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _is_tus_patch(scope: Scope) -> bool:
    """tus PATCH bodies are bounded by their upload's declared length, not by the request body cap."""
    return scope.get("method") == "PATCH" and str(scope.get("path", "")).startswith("/api/v1/uploads/")


def _is_push_put(scope: Scope) -> bool:
    """Push-ingest objects: clips are streamed to staging, bounded by max_upload_bytes (evidence_server/push)."""
    return (
        scope.get("method") == "PUT"
        and str(scope.get("path", "")).count("/") >= 4
        and str(scope.get("path", "")).startswith("/v1/")
    )


def _streamed(scope: Scope) -> bool:
    return _is_tus_patch(scope) or _is_push_put(scope)


ROUTERS: tuple[APIRouter, ...] = (
    accounts_router,
    stations_router,
    transfers_router,
    uploads_router,
    recordings_router,
    metrics_router,
    audit_router,
    *ledger_routers,
    *cases_routers,
    playback_router,
    retention_router,
    compliance_router,
    docks_router,
    admin_router,
    *push_routers,
)

#: Renders the error page for a browser that asked for a page (given by the web UI when mounted).
HtmlError = Callable[[Request, int], Response]


def health_router(ctx: ServerContext) -> APIRouter:
    """``/healthz`` (the process answers) and ``/readyz`` (and its database does)."""
    router = APIRouter(tags=["health"], dependencies=[Depends(public)])

    @router.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.get("/readyz")
    def readyz() -> Response:
        try:
            with ctx.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except Exception as exc:  # noqa: BLE001
            return JSONResponse({"status": "not ready", "detail": str(exc)[:200]}, status_code=503)
        return JSONResponse({"status": "ready"})

    return router


class EscapingJSONResponse(JSONResponse):
    """JSON in UTF-8, but a string no encoding can write (a lone surrogate, which JSON's ``\\udcff`` escape
    carries and Python's parser accepts) written back as that same escape instead of failing to encode. It
    can only stand inside a string, where the escape is valid JSON and means the same character."""

    def render(self, content: object) -> bytes:
        text = json.dumps(content, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
        return text.encode("utf-8", "backslashreplace")


def install_error_handlers(app: FastAPI, html_error: HtmlError | None) -> None:
    """Errors a client caused answer 4xx, a database away answers 503; pages get pages, the API JSON."""

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        """FastAPI's own answer (422, each error with the input it refused), escaping what UTF-8 cannot
        hold: a request carrying a lone surrogate was refused by validation, and then its answer, echoing
        it, failed to encode (a 500) on every route that takes a JSON body."""
        return EscapingJSONResponse({"detail": jsonable_encoder(exc.errors())}, status_code=422)

    @app.exception_handler(OverflowError)
    @app.exception_handler(DataError)
    async def _out_of_range(request: Request, exc: Exception) -> Response:
        """A number or text the database cannot hold (an id of 30 digits): the request's fault, not a 500."""
        log.warning("%s %s: value out of range for the database: %s", request.method, request.url.path, str(exc)[:300])
        return JSONResponse({"detail": "a value in the request is out of range"}, status_code=422)

    @app.exception_handler(OperationalError)
    async def _database_unavailable(request: Request, exc: Exception) -> Response:
        """The database went away (restart, failover, lock timeout): say so and when to retry, not 500."""
        log.error("%s %s: database unavailable: %s", request.method, request.url.path, str(exc)[:300])
        return JSONResponse(
            {"detail": "the database is unavailable; retry shortly"}, status_code=503, headers={"Retry-After": "2"}
        )

    @app.exception_handler(HTTPException)
    async def _pages_answer_in_html(request: Request, exc: HTTPException) -> Response:
        page = not request.url.path.startswith("/api/") and "text/html" in request.headers.get("accept", "")
        if page and exc.status_code == 401:
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return RedirectResponse(f"/login?next={quote(target, safe='/')}", status_code=303)
        if page and html_error is not None and exc.status_code in (403, 404):
            return html_error(request, exc.status_code)
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)


def _warn_of_upkeep(ctx: ServerContext) -> None:
    """Log what PostgreSQL's administrator should fix (autovacuum off); a database not up yet says
    nothing here (``/readyz`` says it)."""
    try:
        warnings = maintenance_warnings(ctx.engine)
    except OperationalError:
        return
    for warning in warnings:
        log.warning("%s", warning)


def create_app(settings: Settings | None = None, *, with_web: bool = True) -> FastAPI:
    settings = settings or get_settings()
    ctx = ServerContext(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        ctx.signing_key  # noqa: B018  (load or create the key before the first request)
        ctx.receiver  # noqa: B018
        _warn_of_upkeep(ctx)
        scheduler = Scheduler(ctx)
        if settings.scheduler_enabled:
            scheduler.start()
        yield
        scheduler.stop()
        ctx.close()

    app = FastAPI(
        title="Custodia evidence server",
        version="0.1.0",
        lifespan=lifespan,
        openapi_url="/openapi.json",
        docs_url="/api/docs",
        redoc_url=None,
    )
    app.state.ctx = ctx  # read only by evidence_server.context (CtxDep)
    rescan_after_commits(ctx, ctx.tasks)  # rescan devices after each committed change
    for router in (*ROUTERS, health_router(ctx)):
        app.include_router(router)
    page_error: HtmlError | None = None
    if with_web:
        from web_ui import html_error, mount

        mount(app)
        page_error = html_error
    install_error_handlers(app, page_error)
    app.add_middleware(BodyLimit, max_bytes=lambda: settings.max_request_body_bytes, exempt=_streamed)
    app.add_middleware(SecurityHeaders)
    app.add_middleware(TrustedProxies, trusted=settings.trusted_proxies)  # outermost: all see the real client
    document_errors(app)
    return app
