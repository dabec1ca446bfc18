"""The audit-log viewer: search by actor, action, object and time; an entry with its inclusion proof
checked against the latest signed checkpoint; chosen entries exported as a signed excerpt."""

from __future__ import annotations

import json
from datetime import datetime, time, timedelta
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import Response

from custodia_wire.auditlog import LogError
from evidence_server.accounts.models import Role, User
from evidence_server.audit import viewer
from evidence_server.audit.service import record as audit
from evidence_server.context import CtxDep
from evidence_server.db import SessionDep
from evidence_server.security import require_roles
from web_ui import csrf
from web_ui.nav import AUDIT_VIEWERS
from web_ui.render import render

router = APIRouter(include_in_schema=False)
Reader = Annotated[User, Depends(require_roles(*AUDIT_VIEWERS))]
Exporter = Annotated[User, Depends(require_roles(Role.auditor, Role.sysadmin))]


def _day(value: str, tz: ZoneInfo, *, end: bool = False) -> datetime | None:
    """A ``YYYY-MM-DD`` from a date field as the start (or the end) of that local day."""
    try:
        day = datetime.strptime(value.strip(), "%Y-%m-%d").date()
    except ValueError:
        return None
    start = datetime.combine(day, time(), tzinfo=tz)
    return start + timedelta(days=1) if end else start


@router.get("/audit")
def audit_page(
    request: Request,
    ctx: CtxDep,
    user: Reader,
    session: SessionDep,
    actor: str = "",
    action: str = "",
    object_type: str = "",
    object_id: str = "",
    since: str = "",
    until: str = "",
    before: int | None = None,
) -> Response:
    tz = ZoneInfo(ctx.settings.default_timezone)
    q = viewer.Query(
        actor=actor.strip()[:200],
        action=action.strip()[:64],
        object_type=object_type.strip()[:32],
        object_id=object_id.strip()[:64],
        since=_day(since, tz),
        until=_day(until, tz, end=True),
        before_seq=before,
    )
    rows = viewer.search(session, q)
    filters = {"actor": q.actor, "action": q.action, "object_type": q.object_type, "object_id": q.object_id}
    filters |= {"since": since[:10], "until": until[:10]}
    return render(
        request,
        "audit.html",
        user=user,
        rows=rows,
        filters=filters,
        more=rows[-1].seq if len(rows) == viewer.PAGE else None,
        may_export=Role(user.role) in (Role.auditor, Role.sysadmin),
        report=None,
    )


@router.get("/audit/entries/{seq}")
def entry_page(seq: int, request: Request, ctx: CtxDep, user: Reader, session: SessionDep) -> Response:
    proof = viewer.entry_proof(ctx, session, seq)
    if proof is None:
        return render(request, "error.html", user=user, status_code=404, message="error.not_found")
    return render(
        request,
        "audit_entry.html",
        user=user,
        proof=proof,
        entry_json=json.dumps(proof.entry, ensure_ascii=False, indent=2, sort_keys=True),
    )


def _csrf_refused(request: Request, session: SessionDep, user: User, token: str) -> Response | None:
    if csrf.valid(request, token):
        return None
    audit(session, "web.csrf_rejected", request=request, details={"path": request.url.path})
    session.commit()
    return render(request, "error.html", user=user, status_code=403, message="error.csrf")


@router.post("/audit/excerpt")
def export_excerpt(
    request: Request,
    ctx: CtxDep,
    user: Exporter,
    session: SessionDep,
    seq: Annotated[list[int] | None, Form()] = None,
    purpose: Annotated[str, Form()] = "",
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    """Download the chosen entries as a signed excerpt (``custodia verify --excerpt FILE --key KEY``)."""
    refused = _csrf_refused(request, session, user, csrf_token)
    if refused is not None:
        return refused
    try:
        doc = viewer.export_excerpt(ctx, session, user, list(seq or []), purpose)
    except LogError as exc:
        session.rollback()
        return render(request, "error.html", user=user, status_code=422, message="audit.excerpt_error", detail=str(exc))
    session.commit()
    body = json.dumps(doc, ensure_ascii=False, indent=2).encode("utf-8")
    name = f"audit-excerpt-{len(doc['entries'])}-entries.json"
    return Response(
        body,
        media_type="application/json",
        headers={"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"},
    )


@router.post("/audit/verify")
def verify_log(
    request: Request, ctx: CtxDep, user: Exporter, session: SessionDep, csrf_token: Annotated[str, Form()] = ""
) -> Response:
    """Rerun the full check of the log now; the result is shown and audited (the auditor's home shows the last one)."""
    refused = _csrf_refused(request, session, user, csrf_token)
    if refused is not None:
        return refused
    report = viewer.verify_now(ctx, session, user)
    session.commit()
    rows = viewer.search(session, viewer.Query())
    return render(
        request,
        "audit.html",
        user=user,
        rows=rows,
        filters={k: "" for k in ("actor", "action", "object_type", "object_id", "since", "until")},
        more=rows[-1].seq if len(rows) == viewer.PAGE else None,
        may_export=True,
        report=report,
    )
