"""The compliance pages: the flags (list, one flag with its evidence, the officer's day and the review
forms) and the dashboard (counts, trend charts, each unit's compliance rate, report downloads).

Every rule lives in ``evidence_server.compliance``; these pages collect input and show results.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import RedirectResponse, Response

from evidence_server.accounts import service as accounts
from evidence_server.accounts.models import Role, User
from evidence_server.compliance import dashboard, review, service
from evidence_server.compliance.facts import Kind
from evidence_server.compliance.models import STATES
from evidence_server.compliance.timeline import day_of_flag
from evidence_server.context import context_of
from evidence_server.db import SessionDep, utcnow
from evidence_server.security import require_roles
from web_ui import charts, csrf, i18n
from web_ui.nav import COMPLIANCE_VIEWERS, DASHBOARD_VIEWERS
from web_ui.render import local_time, render

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

router = APIRouter(include_in_schema=False)
Viewer = Annotated[User, Depends(require_roles(*COMPLIANCE_VIEWERS))]
Reviewer = Annotated[User, Depends(require_roles(*service.REVIEWERS))]
Explainer = Annotated[User, Depends(require_roles(*service.EXPLAINERS))]
FigureViewer = Annotated[User, Depends(require_roles(*DASHBOARD_VIEWERS))]
Text = Annotated[str, Form()]
PAGE_SIZE = 50


def tz_of(request: Request) -> ZoneInfo:
    ctx = context_of(request)
    return ZoneInfo(ctx.settings.default_timezone)


def _local(value: str, tz: ZoneInfo) -> str:
    """An ISO time from the evidence, shown like every other time on the pages."""
    try:
        return local_time(datetime.fromisoformat(value), tz)
    except ValueError:
        return value


def _int(value: str | None) -> int | None:
    return int(value) if value and value.strip().isdigit() else None


def _date(value: str | None) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


@router.get("/compliance")
def flag_list(
    request: Request,
    user: Viewer,
    session: SessionDep,
    kind: str | None = None,
    state: str | None = None,
    unit_id: str | None = None,
    officer_no: str | None = None,
    device_serial: str | None = None,
    month: Annotated[str | None, Query(pattern=f"^$|{dashboard.MONTH_PATTERN}")] = None,
    since: str | None = None,
    until: str | None = None,
    checkout_entry_id: str | None = None,
    user_id: str | None = None,
    cleared: str | None = None,
    page: int = 1,
) -> Response:
    filters = dashboard.Filters(
        kind=kind or None,
        state=state or None,
        unit_id=_int(unit_id),
        officer_no=(officer_no or "").strip() or None,
        device_serial=(device_serial or "").strip() or None,
        month=month or None,
        since=_date(since),
        until=_date(until),
        checkout_entry_id=_int(checkout_entry_id),
        user_id=_int(user_id),
        include_cleared=cleared == "1",
    )
    page = max(1, page)
    rows, total = dashboard.find_flags(
        session, user, filters, tz_of(request), limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE
    )
    units = {u.id: u for u in accounts.units(session)}
    query = filters.query()
    pages = {
        "prev": f"/compliance?{urlencode({**query, 'page': page - 1})}" if page > 1 else None,
        "next": f"/compliance?{urlencode({**query, 'page': page + 1})}" if page * PAGE_SIZE < total else None,
    }
    return render(
        request,
        "compliance.html",
        user=user,
        rows=rows,
        total=total,
        filters=filters,
        units=units,
        kinds=[k.value for k in Kind],
        states=STATES,
        pages=pages,
        page=page,
        figures=Role(user.role) in DASHBOARD_VIEWERS,
    )


def _flag_page(
    request: Request, user: User, session: Session, flag_id: int, error: str | None = None, status_code: int = 200
) -> Response:
    ctx = context_of(request)
    try:
        flag = review.get_flag(session, user, flag_id)
    except review.ReviewError:
        return render(request, "error.html", user=user, status_code=404, message="error.not_found")
    events = review.events_of(session, flag.id)
    people = accounts.users_by_id(
        session, [e.actor_id for e in events] + [flag.assignee_id, flag.reviewed_by_id, flag.user_id]
    )
    reviewers = accounts.active_users_in_roles(session, service.REVIEWERS)
    role = Role(user.role)
    return render(
        request,
        "compliance_flag.html",
        user=user,
        flag=flag,
        events=events,
        people=people,
        reviewers=reviewers,
        unit=accounts.unit(session, flag.unit_id),
        day=day_of_flag(session, user, flag, ctx.settings),
        may_review=role in service.REVIEWERS,
        may_explain=role in service.EXPLAINERS and flag.state not in review.NEEDS_REASON,
        moves=sorted(review.TRANSITIONS.get(flag.state, ())),
        error=error,
        status_code=status_code,
        fmt_time=lambda v: _local(v, tz_of(request)),
    )


@router.get("/compliance/flags/{flag_id}")
def flag_page(flag_id: int, request: Request, user: Viewer, session: SessionDep) -> Response:
    return _flag_page(request, user, session, flag_id)


def _act(request: Request, user: User, session: Session, flag_id: int, token: str, step: Any) -> Response:
    refused = csrf.refused(request, session, user, token)
    if refused is not None:
        return refused
    try:
        flag = review.get_flag(session, user, flag_id)
        step(flag)
    except review.ReviewError as exc:
        session.rollback()
        lang = i18n.request_lang(request)
        key = f"compliance_err.{exc.code}"
        message = i18n.translate(lang, key) if key in i18n.catalogue(lang) else exc.message
        return _flag_page(request, user, session, flag_id, error=message, status_code=exc.status)
    session.commit()
    return RedirectResponse(f"/compliance/flags/{flag_id}", status_code=303)


@router.post("/compliance/flags/{flag_id}/review")
def review_form(
    flag_id: int,
    request: Request,
    user: Reviewer,
    session: SessionDep,
    state: Text,
    csrf_token: Text = "",
    reason: Text = "",
) -> Response:
    return _act(
        request,
        user,
        session,
        flag_id,
        csrf_token,
        lambda flag: review.transition(session, user, flag, state, reason, request),
    )


@router.post("/compliance/flags/{flag_id}/assign")
def assign_form(
    flag_id: int, request: Request, user: Reviewer, session: SessionDep, csrf_token: Text = "", assignee_id: Text = ""
) -> Response:
    return _act(
        request,
        user,
        session,
        flag_id,
        csrf_token,
        lambda flag: review.assign(session, user, flag, _int(assignee_id), request),
    )


@router.post("/compliance/flags/{flag_id}/comment")
def comment_form(
    flag_id: int, request: Request, user: Reviewer, session: SessionDep, csrf_token: Text = "", body: Text = ""
) -> Response:
    return _act(
        request, user, session, flag_id, csrf_token, lambda flag: review.comment(session, user, flag, body, request)
    )


@router.post("/compliance/flags/{flag_id}/explain")
def explain_form(
    flag_id: int, request: Request, user: Explainer, session: SessionDep, csrf_token: Text = "", body: Text = ""
) -> Response:
    return _act(
        request, user, session, flag_id, csrf_token, lambda flag: review.explain(session, user, flag, body, request)
    )


@router.get("/compliance/dashboard")
def dashboard_page(
    request: Request,
    user: FigureViewer,
    session: SessionDep,
    since: str | None = None,
    until: str | None = None,
    unit_id: str | None = None,
) -> Response:
    tz = tz_of(request)
    period = dashboard.Period.default(tz, utcnow().astimezone(tz).date(), _date(since), _date(until))
    if period.until < period.since:
        period = dashboard.Period.default(tz, utcnow().astimezone(tz).date())
    units = accounts.units(session)
    unit = _int(unit_id) if user.sees_all_units else user.unit_id
    fig = dashboard.figures(session, user, period, unit)
    t = i18n.Translator(i18n.request_lang(request))
    base = {"since": period.since.isoformat(), "until": period.until.isoformat(), **({"unit_id": unit} if unit else {})}
    months = list(fig.by_month)
    flags_chart = charts.bar_chart(
        months,
        [fig.by_month[m] for m in months],
        title=t("compliance.chart_flags"),
        ident="chart-flags",
        href=lambda m: "/compliance?" + urlencode({"month": m, **({"unit_id": unit} if unit else {})}),
    )
    rate_chart = charts.line_chart(
        months, [fig.rate_by_month.get(m) for m in months], title=t("compliance.chart_rate"), ident="chart-rate"
    )
    return render(
        request,
        "compliance_dashboard.html",
        user=user,
        fig=fig,
        period=period,
        units=units,
        unit=unit,
        flags_chart=flags_chart,
        rate_chart=rate_chart,
        query=urlencode(base),
        drill={
            "since": period.since.isoformat(),
            "until": period.until.isoformat(),
            **({"unit_id": unit} if unit else {}),
        },
    )
