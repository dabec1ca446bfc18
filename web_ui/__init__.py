"""The browser pages. Calls the server's services; holds no business rules of its own."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request, Response
from fastapi.staticfiles import StaticFiles

STATIC_DIR = Path(__file__).parent / "static"


def mount(app: FastAPI) -> None:
    """Add the pages and the static assets (served locally: the intranet has no internet)."""
    from web_ui.pages import (
        admin,
        auditlog,
        auth,
        building,
        cases,
        compliance,
        fleet,
        home,
        ledger,
        recordings,
        retention,
        stations,
    )

    for router in (
        auth.router,
        stations.router,
        recordings.router,
        ledger.router,
        fleet.router,
        building.router,  # before cases: its path would otherwise be taken for a case id
        cases.router,
        compliance.router,
        retention.router,
        home.router,
        admin.router,
        auditlog.router,
    ):
        app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")


def html_error(request: Request, status_code: int) -> Response:
    """The error page for a browser that asked for a page (the API keeps answering JSON)."""
    from web_ui.render import render

    message = {403: "error.forbidden", 404: "error.not_found"}.get(status_code, "error.title")
    return render(
        request, "error.html", user=getattr(request.state, "user", None), status_code=status_code, message=message
    )
