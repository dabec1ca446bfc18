"""Building a case from the lists: tick recordings (or open one) and add them to a case by its number."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from evidence_server.audit.service import record as audit
from evidence_server.cases import building
from evidence_server.cases.service import CaseError
from evidence_server.db import SessionDep
from web_ui import csrf
from web_ui.pages.cases import Manager, Text, error_text, pattern
from web_ui.render import render

router = APIRouter(include_in_schema=False)


def _back(raw: str) -> str:
    """Only a path of this site to go back to (never another origin)."""
    return raw if raw.startswith("/") and not raw.startswith("//") and "\\" not in raw else "/recordings"


@router.post("/cases/add-recordings")
def add_recordings(
    request: Request,
    user: Manager,
    session: SessionDep,
    case_number: Text = "",
    reason: Text = "",
    back: Text = "",
    csrf_token: Text = "",
    recording_ids: Annotated[list[str] | None, Form()] = None,
) -> Response:
    bad = csrf.refused(request, session, user, csrf_token)
    if bad:
        return bad
    ids = [int(x) for x in recording_ids or [] if x.strip().isdigit() and len(x.strip()) < 19]
    try:
        added = building.add_to_case(
            session, user, case_number, ids, reason=reason, pattern=pattern(request), request=request
        )
    except CaseError as exc:
        session.rollback()
        audit(session, "case.refused", request=request, details={"code": exc.code, "path": request.url.path})
        session.commit()
        return render(
            request,
            "building_refused.html",
            user=user,
            status_code=422 if exc.status < 500 else exc.status,
            detail=error_text(request, exc),
            back=_back(back),
        )
    session.commit()
    return RedirectResponse(
        f"/cases/{added.case.id}?done=added&n={len(added.linked)}&already={len(added.already)}", status_code=303
    )
