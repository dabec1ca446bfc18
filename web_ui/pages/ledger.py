"""The device register and checkout ledger pages: devices, a device's timeline, the checkout, return,
fault and lend forms, the ledger with its exports, approvals and fault reports.

Every rule lives in ``evidence_server.ledger.service``; these pages only collect input and show results.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import quote, urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response

from evidence_server.accounts import service as accounts
from evidence_server.accounts.models import Role, User
from evidence_server.audit.service import record as audit
from evidence_server.context import CtxDep, context_of
from evidence_server.db import SessionDep, utcnow
from evidence_server.ledger import docks, service, views
from evidence_server.ledger.models import Device, LedgerEntry
from evidence_server.ledger.rules import REPORTS, Condition, Kind, RuleError
from evidence_server.ledger.service import audit_entry
from evidence_server.security import require_roles
from web_ui import csrf, i18n
from web_ui.nav import LEDGER_VIEWERS
from web_ui.render import render

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

router = APIRouter(include_in_schema=False)
Viewer = Annotated[User, Depends(require_roles(*LEDGER_VIEWERS))]
Actor = Annotated[User, Depends(require_roles(*service.ACTORS))]
Manager = Annotated[User, Depends(require_roles(*service.MANAGERS))]
GIB = 1024**3
Text = Annotated[str, Form()]


# --- small helpers ------------------------------------------------------------------------------


def tz_of(request: Request) -> ZoneInfo:
    ctx = context_of(request)
    return ZoneInfo(ctx.settings.default_timezone)


def parse_local(value: str, tz: ZoneInfo) -> datetime | None:
    """A ``datetime-local`` field (wall time in the site's zone) as an aware time; empty is None."""
    value = value.strip()
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as exc:
        raise RuleError("bad_time", f"not a time: {value!r}") from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=tz)


def local_input(moment: datetime, tz: ZoneInfo) -> str:
    return moment.astimezone(tz).strftime("%Y-%m-%dT%H:%M")


def number(value: str, kind: Callable[[Any], Any] = int, scale: float = 1) -> Any:
    """A number field: empty is None; ``scale`` converts units (GiB entered, bytes stored)."""
    value = value.strip()
    if not value:
        return None
    try:
        return kind(float(value) * scale) if scale != 1 else kind(value)
    except ValueError as exc:
        raise RuleError("bad_number", f"not a number: {value!r}") from exc


def error_text(request: Request, exc: RuleError) -> str:
    """The refusal in the reader's language: the code's message, and the failed checks if any."""
    lang = i18n.request_lang(request)
    key = f"ledger_err.{exc.code}"
    text = (
        i18n.translate(lang, key)
        if key in i18n.catalogue(lang)
        else i18n.translate(lang, "ledger_err.generic", message=exc.message)
    )
    failures = exc.facts.get("failures")
    if failures:
        text += " " + "、".join(i18n.translate(lang, f"check.{f}") for f in failures)
    if exc.facts.get("holder"):
        text += " " + i18n.translate(lang, "ledger_err.holder", holder=exc.facts["holder"])
    return text


def redirect_done(path: str, what: str) -> Response:
    return RedirectResponse(f"{path}?done={quote(what)}", status_code=303)


def device_or_404(request: Request, session: Session, user: User, serial: str) -> Device | Response:
    try:
        return service.find_device(session, user, serial)
    except RuleError:
        return render(request, "error.html", user=user, status_code=404, message="ledger_err.unknown_device")


def form_device(request: Request, session: Session, user: User, serial: str, submitted: str) -> Device | Response:
    """The device a form posts about, or the page refusing it (bad CSRF token, unknown device)."""
    return csrf.refused(request, session, user, submitted) or device_or_404(request, session, user, serial)


def submit(
    request: Request,
    session: Session,
    operation: Callable[[], LedgerEntry],
    serial: str,
    form_page: Callable[[str], Response],
    success: str,
) -> Response:
    """Run a ledger operation from a form: commit and go to the device page, or show the form again."""
    try:
        entry = operation()
    except RuleError as exc:
        session.rollback()
        audit(
            session,
            "ledger.refused",
            request=request,
            details={"code": exc.code, "path": request.url.path, "via": "web"},
        )
        session.commit()
        return form_page(error_text(request, exc))
    audit_entry(session, request, entry, serial)
    session.commit()
    return redirect_done(f"/devices/{quote(serial)}", success)


# --- devices ------------------------------------------------------------------------------------


@router.get("/devices")
def devices_page(request: Request, user: Viewer, session: SessionDep, done: str = "") -> Response:
    return devices_view(request, session, user, done=done)


def devices_view(
    request: Request, session: Session, user: User, *, done: str = "", error: str | None = None, status_code: int = 200
) -> Response:
    ctx = context_of(request)
    devices = views.devices(session, user)
    out = views.entries_by_id(session, [d.open_checkout_id for d in devices])
    units = service.unit_summaries(session, ctx.settings, user)
    manageable = [s.unit for s in units if service.manages(user, s.unit.id)]
    return render(
        request,
        "devices.html",
        user=user,
        devices=devices,
        out=out,
        units=units,
        unit_names={s.unit.id: s.unit.name for s in units},
        manageable=manageable,
        done=done,
        error=error,
        status_code=status_code,
    )


@router.post("/devices")
def register_submit(
    request: Request,
    ctx: CtxDep,
    user: Manager,
    session: SessionDep,
    serial: Text = "",
    model: Text = "",
    family: Text = "",
    unit_id: Annotated[int | None, Form()] = None,
    csrf_token: Text = "",
) -> Response:
    refused = csrf.refused(request, session, user, csrf_token)
    if refused:
        return refused
    serial = serial.strip()
    acting = service.Context(user, ctx.settings)

    def again(message: str) -> Response:
        return devices_view(request, session, user, error=message, status_code=422)

    if not serial or len(serial) > 64 or not all(c.isalnum() or c in "-_." for c in serial):
        return again(error_text(request, RuleError("bad_serial", "malformed serial")))
    return submit(
        request,
        session,
        lambda: service.register_device(
            session,
            acting,
            serial=serial,
            unit_id=unit_id or user.unit_id,
            model=model.strip() or None,
            family=family.strip() or None,
        ),
        serial,
        again,
        "register",
    )


@router.get("/devices/{serial}")
def device_page(serial: str, request: Request, user: Viewer, session: SessionDep, done: str = "") -> Response:
    device = device_or_404(request, session, user, serial)
    if isinstance(device, Response):
        return device
    return device_view(request, session, user, device, done=done)


def device_view(
    request: Request,
    session: Session,
    user: User,
    device: Device,
    *,
    done: str = "",
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    holder = views.entry(session, device.open_checkout_id)
    names = views.unit_people(session, device.unit_id)
    return render(
        request,
        "device.html",
        user=user,
        device=device,
        holder=holder,
        done=done,
        unit=accounts.unit(session, device.unit_id),
        items=views.timeline(session, user, device),
        names=names,
        clock=docks.clock_history(session, device, limit=20),
        error=error,
        status_code=status_code,
        manager=service.manages(user, device.unit_id),
        actor=Role(user.role) in service.ACTORS,
    )


# --- the forms ----------------------------------------------------------------------------------


def form_page(
    request: Request,
    session: Session,
    user: User,
    device: Device,
    mode: str,
    values: dict[str, Any] | None = None,
    error: str | None = None,
) -> Response:
    ctx = context_of(request)
    settings = ctx.settings
    tz = tz_of(request)
    now = utcnow()
    officers = views.unit_officers(session, device.unit_id)
    fresh = service.fresh_readings(session, device, settings, now) if mode == "checkout" else None
    defaults = {"expected_return_at": local_input(now + timedelta(hours=8), tz)}
    return render(
        request,
        "ledger_form.html",
        user=user,
        device=device,
        mode=mode,
        error=error,
        values=defaults | (values or {}),
        officers=officers,
        fresh=fresh[0] if fresh else None,
        fresh_station=views.station(session, fresh[1]) if fresh else None,
        units=[u for u in accounts.units(session) if u.id != device.unit_id],
        manager=service.is_manager(user),
        settings=settings,
        server_now=now,
        status_code=422 if error else 200,
    )


def _blank_form(request: Request, session: Session, user: User, serial: str, mode: str) -> Response:
    device = device_or_404(request, session, user, serial)
    return device if isinstance(device, Response) else form_page(request, session, user, device, mode)


@router.get("/devices/{serial}/checkout")
def checkout_form(serial: str, request: Request, user: Actor, session: SessionDep) -> Response:
    return _blank_form(request, session, user, serial, "checkout")


@router.get("/devices/{serial}/return")
def return_form(serial: str, request: Request, user: Manager, session: SessionDep) -> Response:
    return _blank_form(request, session, user, serial, "return")


@router.get("/devices/{serial}/fault")
def fault_form(serial: str, request: Request, user: Actor, session: SessionDep) -> Response:
    return _blank_form(request, session, user, serial, "fault")


@router.get("/devices/{serial}/lend")
def lend_form(serial: str, request: Request, user: Actor, session: SessionDep) -> Response:
    return _blank_form(request, session, user, serial, "lend")


@router.post("/devices/{serial}/checkout")
def checkout_submit(
    serial: str,
    request: Request,
    ctx: CtxDep,
    user: Actor,
    session: SessionDep,
    enforcement_matter: Text = "",
    case_number: Text = "",
    case_name: Text = "",
    expected_return_at: Text = "",
    task_start_at: Text = "",
    task_end_at: Text = "",
    occurred_at: Text = "",
    officer_id: Text = "",
    battery_percent: Text = "",
    storage_free_gib: Text = "",
    clock_offset_s: Text = "",
    fault_found: Text = "",
    override_reason: Text = "",
    csrf_token: Text = "",
) -> Response:
    device = form_device(request, session, user, serial, csrf_token)
    if isinstance(device, Response):
        return device
    values = dict(
        enforcement_matter=enforcement_matter,
        case_number=case_number,
        case_name=case_name,
        expected_return_at=expected_return_at,
        task_start_at=task_start_at,
        task_end_at=task_end_at,
        occurred_at=occurred_at,
        officer_id=officer_id,
        battery_percent=battery_percent,
        storage_free_gib=storage_free_gib,
        clock_offset_s=clock_offset_s,
        fault_found=fault_found,
        override_reason=override_reason,
    )
    tz = tz_of(request)
    acting = service.Context(user, ctx.settings)

    def operation() -> LedgerEntry:
        expected = parse_local(expected_return_at, tz)
        if expected is None:
            raise RuleError("bad_return_time", "the expected return time is required")
        readings = {
            "battery_percent": number(battery_percent),
            "storage_free_bytes": number(storage_free_gib, int, GIB),
            "clock_offset_s": number(clock_offset_s, float),
            "fault_found": bool(fault_found),
        }
        task = service.Task(
            enforcement_matter,
            expected,
            case_number.strip() or None,
            case_name.strip() or None,
            parse_local(task_start_at, tz),
            parse_local(task_end_at, tz),
        )
        return service.checkout(
            session,
            acting,
            serial=serial,
            task=task,
            officer_id=number(officer_id),
            occurred_at=parse_local(occurred_at, tz),
            readings=readings,
            override_reason=override_reason,
        )

    return submit(
        request,
        session,
        operation,
        serial,
        lambda message: form_page(request, session, user, device, "checkout", values, message),
        "checkout",
    )


@router.post("/devices/{serial}/return")
def return_submit(
    serial: str,
    request: Request,
    ctx: CtxDep,
    user: Manager,
    session: SessionDep,
    condition: Text = "good",
    description: Text = "",
    occurred_at: Text = "",
    csrf_token: Text = "",
) -> Response:
    device = form_device(request, session, user, serial, csrf_token)
    if isinstance(device, Response):
        return device
    values = dict(condition=condition, description=description, occurred_at=occurred_at)
    acting = service.Context(user, ctx.settings)

    def operation() -> LedgerEntry:
        try:
            cond = Condition(condition)
        except ValueError as exc:
            raise RuleError("bad_condition", "choose the condition") from exc
        return service.return_device(
            session,
            acting,
            serial=serial,
            condition=cond,
            description=description,
            occurred_at=parse_local(occurred_at, tz_of(request)),
        )

    return submit(
        request,
        session,
        operation,
        serial,
        lambda message: form_page(request, session, user, device, "return", values, message),
        "return",
    )


@router.post("/devices/{serial}/fault")
def fault_submit(
    serial: str,
    request: Request,
    ctx: CtxDep,
    user: Actor,
    session: SessionDep,
    kind: Text = "fault",
    description: Text = "",
    occurred_at: Text = "",
    csrf_token: Text = "",
) -> Response:
    device = form_device(request, session, user, serial, csrf_token)
    if isinstance(device, Response):
        return device
    values = dict(kind=kind, description=description, occurred_at=occurred_at)
    acting = service.Context(user, ctx.settings)

    def operation() -> LedgerEntry:
        if kind not in {k.value for k in REPORTS}:
            raise RuleError("bad_kind", "choose what happened")
        return service.report(
            session,
            acting,
            serial=serial,
            kind=Kind(kind),
            description=description,
            occurred_at=parse_local(occurred_at, tz_of(request)),
        )

    return submit(
        request,
        session,
        operation,
        serial,
        lambda message: form_page(request, session, user, device, "fault", values, message),
        "fault",
    )


@router.post("/devices/{serial}/restored")
def restored_submit(
    serial: str,
    request: Request,
    ctx: CtxDep,
    user: Manager,
    session: SessionDep,
    description: Text = "",
    csrf_token: Text = "",
) -> Response:
    device = form_device(request, session, user, serial, csrf_token)
    if isinstance(device, Response):
        return device
    acting = service.Context(user, ctx.settings)

    def again(message: str) -> Response:
        return device_view(request, session, user, device, error=message, status_code=409)

    return submit(
        request,
        session,
        lambda: service.change_service(session, acting, serial=serial, kind=Kind.restored, description=description),
        serial,
        again,
        "restored",
    )


@router.post("/devices/{serial}/lend")
def lend_submit(
    serial: str,
    request: Request,
    ctx: CtxDep,
    user: Actor,
    session: SessionDep,
    borrower_unit_id: Text = "",
    borrower_name: Text = "",
    purpose: Text = "",
    expected_return_at: Text = "",
    csrf_token: Text = "",
) -> Response:
    device = form_device(request, session, user, serial, csrf_token)
    if isinstance(device, Response):
        return device
    values = dict(
        borrower_unit_id=borrower_unit_id,
        borrower_name=borrower_name,
        purpose=purpose,
        expected_return_at=expected_return_at,
    )
    acting = service.Context(user, ctx.settings)
    try:
        expected = parse_local(expected_return_at, tz_of(request))
        if expected is None:
            raise RuleError("bad_return_time", "the expected return time is required")
        lend = service.request_lend(
            session,
            acting,
            serial=serial,
            purpose=purpose,
            expected_return_at=expected,
            borrower_unit_id=number(borrower_unit_id),
            borrower_name=borrower_name,
        )
    except RuleError as exc:
        session.rollback()
        return form_page(request, session, user, device, "lend", values, error_text(request, exc))
    audit(
        session,
        "ledger.lend_requested",
        request=request,
        object_type="lend_request",
        object_id=lend.id,
        details={"device_serial": serial, "via": "web"},
    )
    session.commit()
    return redirect_done("/ledger/approvals", "requested")


# --- the ledger, approvals, fault reports -------------------------------------------------------


def _period(tz: ZoneInfo, since: str, until: str) -> tuple[date, date]:
    today = utcnow().astimezone(tz).date()
    try:
        start = date.fromisoformat(since) if since else today.replace(day=1)
        end = date.fromisoformat(until) if until else today
    except ValueError:
        start, end = today.replace(day=1), today
    return start, end


@router.get("/ledger")
def ledger_page(
    request: Request, user: Viewer, session: SessionDep, unit_id: int | None = None, since: str = "", until: str = ""
) -> Response:
    tz = tz_of(request)
    start, end = _period(tz, since, until)
    units = accounts.units(session) if user.sees_all_units else [user.unit]
    unit = next((u for u in units if u.id == unit_id), None) or next(
        (u for u in units if u.id == user.unit_id), units[0] if units else None
    )
    entries = views.period_entries(
        session,
        user,
        unit,
        datetime.combine(start, time(), tz),
        datetime.combine(end + timedelta(days=1), time(), tz),
    )
    devices = views.devices_by_id(session, {e.device_id for e in entries})
    names = views.display_names(session, [i for e in entries for i in (e.recorded_by_id, e.received_by_id)])
    query = urlencode({"unit_id": unit.id if unit else "", "since": start.isoformat(), "until": end.isoformat()})
    return render(
        request,
        "ledger.html",
        user=user,
        entries=entries,
        devices=devices,
        names=names,
        units=units,
        unit=unit,
        since=start.isoformat(),
        until=end.isoformat(),
        export_query=query,
        can_export=Role(user.role) in service.EXPORTERS,
    )


@router.get("/ledger/approvals")
def approvals_page(request: Request, user: Viewer, session: SessionDep, done: str = "") -> Response:
    return approvals_view(request, session, user, done=done)


def approvals_view(
    request: Request, session: Session, user: User, *, done: str = "", error: str | None = None, status_code: int = 200
) -> Response:
    requests = views.lend_requests(session, user)
    devices = views.devices_by_id(session, {r.device_id for r in requests})
    names = views.display_names(
        session, [i for r in requests for i in (r.requested_by_id, r.decided_by_id, r.borrower_user_id)]
    )
    units = accounts.unit_names(session)
    return render(
        request,
        "approvals.html",
        user=user,
        requests=requests,
        devices=devices,
        names=names,
        units=units,
        done=done,
        error=error,
        status_code=status_code,
        can_decide={r.id for r in requests if r.state == "pending" and service.manages(user, r.unit_id)},
    )


@router.post("/ledger/approvals/{request_id}/{decision}")
def decide_submit(
    request_id: int,
    decision: str,
    request: Request,
    ctx: CtxDep,
    user: Manager,
    session: SessionDep,
    note: Text = "",
    battery_percent: Text = "",
    storage_free_gib: Text = "",
    clock_offset_s: Text = "",
    override_reason: Text = "",
    csrf_token: Text = "",
) -> Response:
    refused = csrf.refused(request, session, user, csrf_token)
    if refused:
        return refused
    acting = service.Context(user, ctx.settings)
    try:
        if decision == "approve":
            readings = {
                "battery_percent": number(battery_percent),
                "storage_free_bytes": number(storage_free_gib, int, GIB),
                "clock_offset_s": number(clock_offset_s, float),
            }
            entry = service.approve_lend(
                session, acting, request_id, note=note, readings=readings, override_reason=override_reason
            )
            device = views.device(session, entry.device_id)
            assert device is not None
            audit_entry(session, request, entry, device.serial)
            audit(
                session,
                "ledger.lend_approved",
                request=request,
                object_type="lend_request",
                object_id=request_id,
                details={"entry_id": entry.id, "via": "web"},
            )
        elif decision == "reject":
            service.reject_lend(session, acting, request_id, note=note)
            audit(
                session,
                "ledger.lend_rejected",
                request=request,
                object_type="lend_request",
                object_id=request_id,
                details={"via": "web"},
            )
        else:
            raise RuleError("bad_decision", "approve or reject")
    except RuleError as exc:
        session.rollback()
        return approvals_view(request, session, user, error=error_text(request, exc), status_code=409)
    session.commit()
    return redirect_done("/ledger/approvals", decision)


@router.get("/ledger/faults")
def faults_page(request: Request, user: Viewer, session: SessionDep) -> Response:
    entries = views.fault_reports(session, user)
    devices = views.devices_by_id(session, {e.device_id for e in entries})
    names = views.display_names(session, [e.recorded_by_id for e in entries])
    mine = views.devices(session, user, by_unit=False)
    return render(request, "faults.html", user=user, entries=entries, devices=devices, names=names, mine=mine)


@router.get("/ledger/faults/new")
def new_fault(user: Actor, serial: str = "") -> Response:
    """The fault report page's device picker leads to that device's report form."""
    return RedirectResponse(f"/devices/{quote(serial.strip(), safe='')}/fault", status_code=303)
