"""The compliance API: /api/v1/compliance…

Legal affairs and auditors read every flag and review; device administrators read their unit's
flags, its figures and its report, and explain; officers read their own flags and explain; scans
may also be run by sysadmins (they read no flags).
"""

from __future__ import annotations

from datetime import date
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from sqlalchemy import select

from evidence_server.accounts.models import Unit, User
from evidence_server.audit.service import record as audit
from evidence_server.compliance import dashboard, reports, review, service
from evidence_server.compliance.models import ComplianceFlag, ComplianceScan
from evidence_server.compliance.schemas import (
    AssignIn,
    DashboardOut,
    FlagDetail,
    FlagEventOut,
    FlagOut,
    FlagPage,
    ReviewIn,
    ScanIn,
    ScanOut,
    TextIn,
    UnitRateOut,
)
from evidence_server.context import CtxDep, context_of
from evidence_server.db import SessionDep, utcnow
from evidence_server.security import require_roles

router = APIRouter(prefix="/api/v1/compliance", tags=["compliance"])

Reader = Annotated[User, Depends(require_roles(*service.READERS))]
Reviewer = Annotated[User, Depends(require_roles(*service.REVIEWERS))]
Explainer = Annotated[User, Depends(require_roles(*service.EXPLAINERS))]
FigureViewer = Annotated[User, Depends(require_roles(*service.FIGURE_VIEWERS))]
Scanner = Annotated[User, Depends(require_roles(*service.SCANNERS))]


def tz_of(request: Request) -> ZoneInfo:
    ctx = context_of(request)
    return ZoneInfo(ctx.settings.default_timezone)


def _flag(session: SessionDep, user: User, flag_id: int) -> ComplianceFlag:
    try:
        return review.get_flag(session, user, flag_id)
    except review.ReviewError as exc:
        raise HTTPException(exc.status, {"code": exc.code, "message": exc.message}) from exc


def _detail(session: SessionDep, flag: ComplianceFlag) -> FlagDetail:
    events = [FlagEventOut.model_validate(e) for e in review.events_of(session, flag.id)]
    return FlagDetail(**FlagOut.model_validate(flag).model_dump(), events=events)


@router.get("/flags", response_model=FlagPage)
def list_flags(
    request: Request,
    user: Reader,
    session: SessionDep,
    kind: str | None = None,
    state: str | None = None,
    unit_id: int | None = None,
    officer_no: str | None = None,
    device_serial: str | None = None,
    user_id: int | None = None,
    checkout_entry_id: int | None = None,
    month: Annotated[str | None, Query(pattern=dashboard.MONTH_PATTERN)] = None,
    since: date | None = None,
    until: date | None = None,
    include_cleared: bool = False,
    assignee_id: int | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> FlagPage:
    """Flags the caller may see, newest first, filtered like the dashboard's drill-down links."""
    filters = dashboard.Filters(
        kind,
        state,
        unit_id,
        officer_no,
        device_serial,
        user_id,
        checkout_entry_id,
        month,
        since,
        until,
        include_cleared,
        assignee_id,
    )
    rows, total = dashboard.find_flags(session, user, filters, tz_of(request), limit=limit, offset=offset)
    return FlagPage(total=total, items=[FlagOut.model_validate(r) for r in rows])


@router.get("/flags/{flag_id}", response_model=FlagDetail)
def get_flag(flag_id: int, user: Reader, session: SessionDep) -> FlagDetail:
    return _detail(session, _flag(session, user, flag_id))


def _act(session: SessionDep, flag: ComplianceFlag, step: object) -> FlagDetail:
    try:
        if callable(step):
            step()
    except review.ReviewError as exc:
        session.rollback()
        raise HTTPException(exc.status, {"code": exc.code, "message": exc.message}) from exc
    session.commit()
    return _detail(session, flag)


@router.post("/flags/{flag_id}/review", response_model=FlagDetail)
def review_flag(flag_id: int, body: ReviewIn, request: Request, user: Reviewer, session: SessionDep) -> FlagDetail:
    """Move the flag through the review: open → under_review → confirmed | dismissed (with a reason)."""
    flag = _flag(session, user, flag_id)
    return _act(session, flag, lambda: review.transition(session, user, flag, body.state, body.reason, request))


@router.post("/flags/{flag_id}/assign", response_model=FlagDetail)
def assign_flag(flag_id: int, body: AssignIn, request: Request, user: Reviewer, session: SessionDep) -> FlagDetail:
    flag = _flag(session, user, flag_id)
    return _act(session, flag, lambda: review.assign(session, user, flag, body.assignee_id, request))


@router.post("/flags/{flag_id}/comments", response_model=FlagDetail, status_code=201)
def comment_flag(flag_id: int, body: TextIn, request: Request, user: Reviewer, session: SessionDep) -> FlagDetail:
    flag = _flag(session, user, flag_id)
    return _act(session, flag, lambda: review.comment(session, user, flag, body.body, request))


@router.post("/flags/{flag_id}/explanations", response_model=FlagDetail, status_code=201)
def explain_flag(flag_id: int, body: TextIn, request: Request, user: Explainer, session: SessionDep) -> FlagDetail:
    """The officer concerned or the unit's device administrator explains."""
    flag = _flag(session, user, flag_id)
    return _act(session, flag, lambda: review.explain(session, user, flag, body.body, request))


def _period(request: Request, since: date | None, until: date | None) -> dashboard.Period:
    tz = tz_of(request)
    period = dashboard.Period.default(tz, utcnow().astimezone(tz).date(), since, until)
    if period.until < period.since or (period.until - period.since).days > 3660:
        raise HTTPException(422, {"code": "bad_period", "message": "the period is empty or longer than 10 years"})
    return period


def _unit(session: SessionDep, user: User, unit_id: int | None) -> int | None:
    if unit_id is None:
        return None if user.sees_all_units else user.unit_id
    if not user.sees_all_units and unit_id != user.unit_id:
        raise HTTPException(404, {"code": "unknown_unit", "message": "no such unit"})
    if session.get(Unit, unit_id) is None:
        raise HTTPException(404, {"code": "unknown_unit", "message": "no such unit"})
    return unit_id


@router.get("/dashboard", response_model=DashboardOut)
def get_dashboard(
    request: Request,
    user: FigureViewer,
    session: SessionDep,
    since: date | None = None,
    until: date | None = None,
    unit_id: int | None = None,
) -> DashboardOut:
    """Counts by kind, state, unit, officer and month; each unit's compliance rate, overall and by month."""
    period = _period(request, since, until)
    fig = dashboard.figures(session, user, period, _unit(session, user, unit_id))
    return DashboardOut(
        since=period.since,
        until=period.until,
        total=fig.total,
        by_kind=fig.by_kind,
        by_state=fig.by_state,
        by_unit=[{"unit_id": u, "unit_name": name, "count": n} for u, name, n in fig.by_unit],
        by_officer=[{"officer_no": o, "count": n} for o, n in fig.by_officer],
        by_month=fig.by_month,
        rates=[
            UnitRateOut(unit_id=r.unit_id, unit_name=r.unit_name, checkouts=r.checkouts, flagged=r.flagged, rate=r.rate)
            for r in fig.rates
        ],
        rate_by_month=fig.rate_by_month,
    )


def _report(
    request: Request,
    user: User,
    session: SessionDep,
    unit_id: int | None,
    since: date | None,
    until: date | None,
    fmt: str,
) -> reports.Report:
    period = _period(request, since, until)
    unit = session.get(Unit, _unit(session, user, unit_id) or user.unit_id)
    assert unit is not None
    built = reports.build(session, user, unit, period)
    audit(
        session,
        "compliance.report",
        request=request,
        object_type="unit",
        object_id=unit.id,
        details={
            "since": period.since.isoformat(),
            "until": period.until.isoformat(),
            "format": fmt,
            "flags": len(built.flags),
        },
    )
    session.commit()
    return built


def _download(content: bytes, media_type: str, name: str) -> Response:
    return Response(
        content,
        media_type=media_type,
        headers={"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"},
    )


@router.get("/report.xlsx")
def report_xlsx(
    request: Request,
    user: FigureViewer,
    session: SessionDep,
    unit_id: int | None = None,
    since: date | None = None,
    until: date | None = None,
) -> Response:
    """A unit's evaluation report for a period (R8) as a workbook."""
    built = _report(request, user, session, unit_id, since, until, "xlsx")
    return _download(
        reports.to_xlsx(built),
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        f"compliance-{built.heading.since}-{built.heading.until}.xlsx",
    )


@router.get("/report.pdf")
def report_pdf(
    request: Request,
    user: FigureViewer,
    session: SessionDep,
    unit_id: int | None = None,
    since: date | None = None,
    until: date | None = None,
) -> Response:
    built = _report(request, user, session, unit_id, since, until, "pdf")
    return _download(
        reports.to_pdf(built), "application/pdf", f"compliance-{built.heading.since}-{built.heading.until}.pdf"
    )


@router.post("/scans", response_model=ScanOut, status_code=201)
def run_scan(body: ScanIn, request: Request, ctx: CtxDep, user: Scanner, session: SessionDep) -> ComplianceScan:
    """Run the rules now (normally they run after each change and on a schedule)."""
    result = service.run_scan(session, ctx.settings, scope=body.scope, serials=body.serials, user_ids=body.user_ids)
    audit(
        session,
        "compliance.scan",
        request=request,
        object_type="compliance_scan",
        object_id=result.scan_id,
        details={"scope": body.scope, "counts": dict(result.counts)},
    )
    session.commit()
    scan = session.get(ComplianceScan, result.scan_id)
    assert scan is not None
    return scan


@router.get("/scans", response_model=list[ScanOut])
def list_scans(user: Scanner, session: SessionDep) -> list[ComplianceScan]:
    return list(session.scalars(select(ComplianceScan).order_by(ComplianceScan.id.desc()).limit(50)))
