"""Administration pages: units, users and roles, stations (device administrators within their unit).

Every action goes through ``evidence_server.admin.service``, which checks who may do it and audits
it. A generated password or enrolment code is shown once, on the page that answers the form, and
is never stored in clear.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response

from evidence_server.accounts.models import Role, User
from evidence_server.admin import rules, service
from evidence_server.audit.service import record as audit
from evidence_server.context import CtxDep
from evidence_server.db import SessionDep
from evidence_server.security import require_roles
from web_ui import csrf
from web_ui.nav import ADMIN_VIEWERS
from web_ui.render import render

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

router = APIRouter(include_in_schema=False)
Admin = Annotated[User, Depends(require_roles(*ADMIN_VIEWERS))]
Sysadmin = Annotated[User, Depends(require_roles(Role.sysadmin))]  # units are made by system administrators
Text = Annotated[str, Form()]
SECTIONS = ("users", "stations", "units")


def _page(
    request: Request, session: Session, user: User, section: str, *, status_code: int = 200, **values: Any
) -> Response:
    units = service.units_visible(session, user)
    context: dict[str, Any] = {
        "section": section,
        "sections": SECTIONS,
        "units": units,
        "unit_names": {u.id: u.name for u in units},
        "roles": rules.assignable_roles(Role(user.role)),
        "may_create_units": rules.may_create_units(Role(user.role)),
        "error": None,
        "secret": None,
        "done": "",
    }
    if section == "users":
        context["people"] = service.users_visible(session, user)
    elif section == "stations":
        context["stations"] = service.stations_visible(session, user)
    context.update(values)
    return render(request, f"admin_{section}.html", user=user, status_code=status_code, **context)


def _act(
    request: Request,
    session: Session,
    user: User,
    section: str,
    csrf_token: str,
    action: Callable[[], dict[str, Any] | None],
    done: str,
) -> Response:
    """Run one audited action: on success show its secret once or go back to the list; on refusal say why."""
    if not csrf.valid(request, csrf_token):
        audit(session, "web.csrf_rejected", request=request, details={"path": request.url.path})
        session.commit()
        return render(request, "error.html", user=user, status_code=403, message="error.csrf")
    try:
        shown = action()
    except service.AdminError as exc:
        session.rollback()
        return _page(request, session, user, section, status_code=exc.status, error=exc.message)
    session.commit()
    if shown:
        return _page(request, session, user, section, secret=shown, done=done)
    return RedirectResponse(f"/admin/{section}?done={done}", status_code=303)


@router.get("/admin")
def admin_home(user: Admin) -> Response:
    return RedirectResponse("/admin/users", status_code=303)


@router.get("/admin/{section}")
def admin_page(section: str, request: Request, user: Admin, session: SessionDep, done: str = "") -> Response:
    if section not in SECTIONS:
        return render(request, "error.html", user=user, status_code=404, message="error.not_found")
    return _page(request, session, user, section, done=done[:32])


# --- units ------------------------------------------------------------------------------------


@router.post("/admin/units")
def create_unit(
    request: Request, user: Sysadmin, session: SessionDep, code: Text = "", name: Text = "", csrf_token: Text = ""
) -> Response:
    def act() -> None:
        service.create_unit(session, user, code=code, name=name, request=request)

    return _act(request, session, user, "units", csrf_token, act, "unit_created")


# --- users ------------------------------------------------------------------------------------


@router.post("/admin/users")
def create_user(
    request: Request,
    user: Admin,
    session: SessionDep,
    username: Text = "",
    role: Text = "",
    unit_id: Annotated[int, Form()] = 0,
    display_name: Text = "",
    officer_no: Text = "",
    csrf_token: Text = "",
) -> Response:
    def act() -> dict[str, Any]:
        made = service.create_user(
            session,
            user,
            username=username,
            role=role,
            unit_id=unit_id,
            display_name=display_name,
            officer_no=officer_no,
            request=request,
        )
        return {"kind": "password", "who": made.user.username, "value": made.password}

    return _act(request, session, user, "users", csrf_token, act, "user_created")


@router.post("/admin/users/{user_id}/{change}")
def change_user(
    user_id: int,
    change: str,
    request: Request,
    user: Admin,
    session: SessionDep,
    role: Text = "",
    csrf_token: Text = "",
) -> Response:
    def act() -> dict[str, Any] | None:
        if change == "password":
            target, password, _ended = service.reset_password(session, user, user_id, request=request)
            return {"kind": "password", "who": target.username, "value": password}
        if change in ("disable", "enable"):
            service.set_active(session, user, user_id, change == "enable", request=request)
            return None
        if change == "role":
            try:
                new_role = Role(role)
            except ValueError as exc:
                raise service.AdminError(422, f"no role {role!r}") from exc
            service.set_role(session, user, user_id, new_role, request=request)
            return None
        raise service.AdminError(404, "no such change")

    return _act(request, session, user, "users", csrf_token, act, f"user_{change}"[:32])


# --- stations ---------------------------------------------------------------------------------


@router.post("/admin/stations")
def create_station(
    request: Request,
    ctx: CtxDep,
    user: Admin,
    session: SessionDep,
    name: Text = "",
    unit_id: Annotated[int, Form()] = 0,
    csrf_token: Text = "",
) -> Response:
    def act() -> dict[str, Any]:
        made = service.create_station(
            session, user, name=name, unit_id=unit_id, code_hours=ctx.settings.enrolment_code_hours, request=request
        )
        return {"kind": "code", "who": made.station.name, "value": made.code, "expires_at": made.expires_at}

    return _act(request, session, user, "stations", csrf_token, act, "station_created")


@router.post("/admin/stations/{station_id}/{change}")
def change_station(
    station_id: int, change: str, request: Request, ctx: CtxDep, user: Admin, session: SessionDep, csrf_token: Text = ""
) -> Response:
    def act() -> dict[str, Any] | None:
        if change in ("code", "rotate"):
            made = service.issue_code(
                session,
                user,
                station_id,
                code_hours=ctx.settings.enrolment_code_hours,
                replace=change == "rotate",
                request=request,
            )
            return {"kind": "code", "who": made.station.name, "value": made.code, "expires_at": made.expires_at}
        if change == "revoke":
            service.revoke_station(session, user, station_id, request=request)
            return None
        raise service.AdminError(404, "no such change")

    return _act(request, session, user, "stations", csrf_token, act, f"station_{change}"[:32])
