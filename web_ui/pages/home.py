"""The home page: the work waiting for each person, counted; for officers also their docks, live,
the recordings waiting for their task (recorded right there) and the devices they must bring back."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response

from evidence_server.accounts.models import Role, User
from evidence_server.audit.service import record as audit
from evidence_server.cases import linking
from evidence_server.cases.service import CaseError
from evidence_server.context import CtxDep
from evidence_server.db import SessionDep
from evidence_server.docks import service as docks
from evidence_server.home.service import work_for
from evidence_server.security import require_roles
from web_ui import csrf
from web_ui.nav import ALL_USERS
from web_ui.render import render

router = APIRouter(include_in_schema=False)
SignedIn = Annotated[User, Depends(require_roles(*ALL_USERS))]
Officer = Annotated[User, Depends(require_roles(Role.officer))]
Text = Annotated[str, Form()]
REFRESH_MS = 2000


def officer_docks(session: SessionDep, user: User) -> dict[str, Any]:
    """The live part of an officer's home: ports at their unit's stations, their docks file by file."""
    transfers = docks.officer_transfers(session, user)
    return {
        "ports": docks.active_ports(session, unit_id=user.unit_id),
        "docks": [(tr, docks.file_rows(session, tr)) for tr in transfers],
    }


@router.get("/")
def home(request: Request, ctx: CtxDep, user: SignedIn, session: SessionDep, done: str = "") -> Response:
    work = work_for(session, user, ctx.settings)
    extra: dict[str, Any] = {}
    if Role(user.role) == Role.officer:
        extra = officer_docks(session, user) | {
            "awaiting": docks.transfers_awaiting_task(session, user),
            "refresh_url": "/me/live",
            "refresh_ms": REFRESH_MS,
        }
    return render(request, "home.html", user=user, work=work, done=done, **extra)


@router.get("/me/live")
def officer_live(request: Request, user: Officer, session: SessionDep) -> Response:
    """The officer's docks, fetched every few seconds by ``static/custodia.js``."""
    return render(request, "_officer_live.html", user=user, **officer_docks(session, user))


@router.post("/me/transfers/{transfer_id}/task")
def record_task(
    transfer_id: str,
    request: Request,
    ctx: CtxDep,
    user: Officer,
    session: SessionDep,
    enforcement_matter: Text = "",
    case_number: Text = "",
    csrf_token: Text = "",
) -> Response:
    """The officer names the enforcement matter and case of one of their docks, from their home page."""
    if not csrf.valid(request, csrf_token):
        audit(session, "web.csrf_rejected", request=request, details={"path": request.url.path})
        session.commit()
        return render(request, "error.html", user=user, status_code=403, message="error.csrf")
    try:
        transfer = linking.get_transfer(session, user, transfer_id)
        if transfer.officer_no != user.officer_no:
            raise CaseError("unknown_transfer", "not your dock", 404)
        linking.set_transfer_task(
            session,
            user,
            transfer,
            enforcement_matter=enforcement_matter,
            case_number=case_number,
            pattern=str(ctx.settings.case_number_pattern),
            request=request,
        )
    except CaseError as exc:
        session.rollback()
        work = work_for(session, user, ctx.settings)
        extra = officer_docks(session, user) | {
            "awaiting": docks.transfers_awaiting_task(session, user),
            "refresh_url": "/me/live",
            "refresh_ms": REFRESH_MS,
        }
        return render(
            request,
            "home.html",
            user=user,
            work=work,
            done="",
            task_error=(transfer_id, str(exc)),
            status_code=exc.status,
            **extra,
        )
    session.commit()
    return RedirectResponse("/?done=task#tasks", status_code=303)
