"""The device register and ledger API: /api/v1/devices… and /api/v1/ledger….

device_admin manages their own unit (sysadmin every unit); officers check out for themselves, report
faults and see their own entries; legal_affairs and auditors read everything; stations submit readings.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from typing import Annotated, TypeVar
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from evidence_server.accounts.models import Role, Unit, User
from evidence_server.audit.service import record as audit
from evidence_server.context import CtxDep, context_of
from evidence_server.db import SessionDep, utcnow
from evidence_server.ledger import docks, exports, service
from evidence_server.ledger.models import Device, DockMismatch, LedgerEntry, LendRequest
from evidence_server.ledger.rules import REPORTS, Condition, Kind, Readings, RuleError, Thresholds, precheck
from evidence_server.ledger.schemas import (
    AdminOut,
    AllocationIn,
    CheckoutIn,
    ClockSampleOut,
    CorrectionIn,
    DecisionIn,
    DeviceIn,
    DeviceOut,
    EntryOut,
    EntryPage,
    FaultIn,
    LendIn,
    LendOut,
    MismatchOut,
    ReturnIn,
    ServiceIn,
    StationReadingIn,
    StationReadingOut,
    UnitOut,
)
from evidence_server.ledger.service import audit_entry
from evidence_server.security import CurrentStation, require_roles

devices_router = APIRouter(prefix="/api/v1/devices", tags=["devices"])
ledger_router = APIRouter(prefix="/api/v1/ledger", tags=["ledger"])
routers = (devices_router, ledger_router)

Reader = Annotated[User, Depends(require_roles(*service.READERS))]
Manager = Annotated[User, Depends(require_roles(*service.MANAGERS))]
Actor = Annotated[User, Depends(require_roles(*service.ACTORS))]
Exporter = Annotated[User, Depends(require_roles(*service.EXPORTERS))]
Sysadmin = Annotated[User, Depends(require_roles(Role.sysadmin))]

T = TypeVar("T")
NOT_FOUND = {"unknown_device", "unknown_request", "unknown_entry", "unknown_unit"}
FORBIDDEN = {"other_unit", "not_yourself", "override_not_allowed", "backdating_not_allowed"}
CONFLICT = {
    "not_checked_out",
    "already_registered",
    "concurrent_change",
    "checks_failed",
    "request_decided",
    "not_out_of_service",
}


def http_status(code: str) -> int:
    if code in NOT_FOUND:
        return 404
    if code in FORBIDDEN:
        return 403
    if code in CONFLICT or code.startswith("device_"):
        return 409
    return 422


def http_error(exc: RuleError) -> HTTPException:
    return HTTPException(http_status(exc.code), {"code": exc.code, "message": exc.message, **exc.facts})


def run(session: Session, request: Request, operation: Callable[[], T]) -> T:
    """Run a ledger operation; a refusal is audited and answered with its code."""
    try:
        return operation()
    except RuleError as exc:
        session.rollback()
        audit(
            session,
            "ledger.refused",
            request=request,
            details={"code": exc.code, "path": request.url.path, "method": request.method},
        )
        session.commit()
        raise http_error(exc) from exc


def context(request: Request, user: User | None) -> service.Context:
    ctx = context_of(request)
    return service.Context(user, ctx.settings)


def _commit_entry(session: Session, request: Request, entry: LedgerEntry) -> LedgerEntry:
    device = session.get(Device, entry.device_id)
    assert device is not None
    audit_entry(session, request, entry, device.serial)
    session.commit()
    return entry


def device_out(session: Session, devices: list[Device]) -> list[DeviceOut]:
    open_ids = [d.open_checkout_id for d in devices if d.open_checkout_id]
    entries = {e.id: e for e in session.scalars(select(LedgerEntry).where(LedgerEntry.id.in_(open_ids)))}
    out = []
    for d in devices:
        item = DeviceOut.model_validate(d)
        e = entries.get(d.open_checkout_id or 0)
        if e is not None:
            item.holder_officer_no, item.holder_name = e.officer_no, e.officer_name or e.borrower_name
            item.out_since, item.expected_return_at = e.occurred_at, e.expected_return_at
        out.append(item)
    return out


# --- devices ------------------------------------------------------------------------------------


@devices_router.get("", response_model=list[DeviceOut])
def list_devices(
    user: Reader, session: SessionDep, unit_id: int | None = None, status: str | None = None
) -> list[DeviceOut]:
    q = service.devices_visible(user).order_by(Device.serial)
    if unit_id is not None:
        q = q.where(Device.unit_id == unit_id)
    if status:
        q = q.where(Device.status == status)
    return device_out(session, list(session.scalars(q)))


@devices_router.post("", response_model=EntryOut, status_code=201)
def register_device(body: DeviceIn, request: Request, ctx: CtxDep, user: Manager, session: SessionDep) -> LedgerEntry:
    """Add a device to the register, or confirm one first seen at a dock (status ``unregistered``, pending):
    its recordings, kept in custody but linked to no case until now, are then linked to their cases."""
    pending = session.scalar(select(Device.status).where(Device.serial == body.serial)) == "unregistered"
    entry = run(
        session,
        request,
        lambda: service.register_device(
            session,
            context(request, user),
            serial=body.serial,
            unit_id=body.unit_id or user.unit_id,
            model=body.model,
            family=body.family,
            occurred_at=body.occurred_at,
        ),
    )
    done = _commit_entry(session, request, entry)
    if pending:
        ctx.tasks.send("cases.auto_link_device", body.serial)
    return done


@devices_router.get("/{serial}", response_model=DeviceOut)
def get_device(serial: str, request: Request, user: Reader, session: SessionDep) -> DeviceOut:
    device = run(session, request, lambda: service.find_device(session, user, serial))
    return device_out(session, [device])[0]


@devices_router.get("/{serial}/ledger", response_model=list[EntryOut])
def device_ledger(serial: str, request: Request, user: Reader, session: SessionDep) -> list[LedgerEntry]:
    """The device's history, oldest first (officers: their own entries only)."""
    device = run(session, request, lambda: service.find_device(session, user, serial))
    q = service.entries_visible(user).where(LedgerEntry.device_id == device.id).order_by(LedgerEntry.seq)
    return list(session.scalars(q))


@devices_router.get("/{serial}/clock-offsets", response_model=list[ClockSampleOut])
def clock_offsets(serial: str, request: Request, user: Reader, session: SessionDep) -> list[ClockSampleOut]:
    """The device's clock offset against the server at every dock, reading and manual check, newest first."""
    device = run(session, request, lambda: service.find_device(session, user, serial))
    return [
        ClockSampleOut(at=s.at, offset_s=s.offset_s, source=s.source, station_id=s.station_id)
        for s in docks.clock_history(session, device)
    ]


def _service_change(kind: Kind) -> Callable[..., LedgerEntry]:
    def change(serial: str, body: ServiceIn, request: Request, user: Manager, session: SessionDep) -> LedgerEntry:
        entry = run(
            session,
            request,
            lambda: service.change_service(
                session,
                context(request, user),
                serial=serial,
                kind=kind,
                description=body.description,
                occurred_at=body.occurred_at,
            ),
        )
        return _commit_entry(session, request, entry)

    change.__doc__ = {
        Kind.restored: "Back in service: repaired, or found again.",
        Kind.retire: "Out of service for good.",
    }[kind]
    return change


devices_router.post("/{serial}/restored", response_model=EntryOut, status_code=201, name="device_restored")(
    _service_change(Kind.restored)
)
devices_router.post("/{serial}/retire", response_model=EntryOut, status_code=201, name="device_retire")(
    _service_change(Kind.retire)
)


@devices_router.post("/{serial}/readings", response_model=StationReadingOut, status_code=201)
def submit_reading(
    serial: str, body: StationReadingIn, request: Request, ctx: CtxDep, station: CurrentStation, session: SessionDep
) -> StationReadingOut:
    """A station read a docked device: battery, free storage, clock. Used by the next checkout's checks."""
    if len(serial) > 64 or not serial.replace("-", "").replace("_", "").replace(".", "").isalnum():
        raise HTTPException(422, {"code": "bad_serial", "message": "malformed serial"})
    if not docks.dock_access(session, station, serial).allowed:  # the same rule as opening a transfer
        raise HTTPException(403, "this device belongs to another unit: this station may not read it")
    reading = docks.submit_reading(session, station, serial, body.model_dump())
    device = session.get(Device, reading.device_id)
    assert device is not None
    failures = precheck(
        Readings(
            reading.battery_percent, reading.storage_free_bytes, reading.clock_offset_s, bool(reading.fault_found)
        ),
        Thresholds.from_settings(ctx.settings),
    )
    audit(
        session,
        "device.reading",
        request=request,
        object_type="device",
        object_id=serial,
        details={"reading_id": reading.id, "failures": failures},
    )
    session.commit()
    return StationReadingOut(
        reading_id=reading.id, device_status=device.status, clock_offset_s=reading.clock_offset_s, failures=failures
    )


# --- ledger entries -----------------------------------------------------------------------------


@ledger_router.get("/entries", response_model=EntryPage)
def list_entries(
    user: Reader,
    session: SessionDep,
    unit_id: int | None = None,
    serial: str | None = None,
    kind: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> EntryPage:
    q = service.entries_visible(user)
    if unit_id is not None:
        q = q.where(LedgerEntry.unit_id == unit_id)
    if serial:
        q = q.join(Device, Device.id == LedgerEntry.device_id).where(Device.serial == serial)
    if kind:
        q = q.where(LedgerEntry.kind == kind)
    if since is not None:
        q = q.where(LedgerEntry.occurred_at >= since)
    if until is not None:
        q = q.where(LedgerEntry.occurred_at < until)
    total = session.scalar(select(func.count()).select_from(q.subquery())) or 0
    rows = session.scalars(
        q.order_by(LedgerEntry.occurred_at.desc(), LedgerEntry.id.desc()).limit(limit).offset(offset)
    ).all()
    return EntryPage(total=total, items=[EntryOut.model_validate(e) for e in rows])


@ledger_router.get("/entries/{entry_id}", response_model=EntryOut)
def get_entry(entry_id: int, user: Reader, session: SessionDep) -> LedgerEntry:
    entry = session.scalar(service.entries_visible(user).where(LedgerEntry.id == entry_id))
    if entry is None:
        raise HTTPException(404, {"code": "unknown_entry", "message": "no such ledger entry"})
    return entry


@ledger_router.post("/checkouts", response_model=EntryOut, status_code=201)
def checkout(body: CheckoutIn, request: Request, user: Actor, session: SessionDep) -> LedgerEntry:
    """Check a device out for an enforcement task, after the pre-checkout checks (R3).

    Readings left out are taken from what a station read from the docked device in the last
    ``readings_max_age_seconds``. Failed checks need ``override_reason`` from an administrator.
    """
    task = service.Task(
        body.enforcement_matter,
        body.expected_return_at,
        body.case_number,
        body.case_name,
        body.task_start_at,
        body.task_end_at,
    )
    entry = run(
        session,
        request,
        lambda: service.checkout(
            session,
            context(request, user),
            serial=body.serial,
            task=task,
            officer_id=body.officer_id,
            occurred_at=body.occurred_at,
            readings=body.readings.model_dump() if body.readings else None,
            override_reason=body.override_reason,
        ),
    )
    return _commit_entry(session, request, entry)


@ledger_router.post("/returns", response_model=EntryOut, status_code=201)
def return_device(body: ReturnIn, request: Request, user: Manager, session: SessionDep) -> LedgerEntry:
    entry = run(
        session,
        request,
        lambda: service.return_device(
            session,
            context(request, user),
            serial=body.serial,
            condition=Condition(body.condition),
            description=body.description,
            occurred_at=body.occurred_at,
            received_by_id=body.received_by_id,
        ),
    )
    return _commit_entry(session, request, entry)


@ledger_router.post("/faults", response_model=EntryOut, status_code=201)
def report_fault(body: FaultIn, request: Request, user: Actor, session: SessionDep) -> LedgerEntry:
    """Report a fault, damage or loss: the device's status changes and the report joins the ledger."""
    entry = run(
        session,
        request,
        lambda: service.report(
            session,
            context(request, user),
            serial=body.serial,
            kind=Kind(body.kind),
            description=body.description,
            occurred_at=body.occurred_at,
        ),
    )
    return _commit_entry(session, request, entry)


@ledger_router.get("/faults", response_model=list[EntryOut])
def list_faults(
    user: Reader, session: SessionDep, limit: Annotated[int, Query(ge=1, le=1000)] = 200
) -> list[LedgerEntry]:
    q = service.entries_visible(user).where(LedgerEntry.kind.in_([k.value for k in REPORTS]))
    return list(session.scalars(q.order_by(LedgerEntry.occurred_at.desc()).limit(limit)))


@ledger_router.post("/corrections", response_model=EntryOut, status_code=201)
def correct(body: CorrectionIn, request: Request, user: Manager, session: SessionDep) -> LedgerEntry:
    """Correct an entry with a new one that references it (entries are never changed)."""
    entry = run(
        session,
        request,
        lambda: service.correct(
            session, context(request, user), entry_id=body.entry_id, changes=body.changes, reason=body.reason
        ),
    )
    return _commit_entry(session, request, entry)


# --- lending --------------------------------------------------------------------------------------


@ledger_router.get("/lend-requests", response_model=list[LendOut])
def list_lend_requests(user: Reader, session: SessionDep, state: str | None = None) -> list[LendRequest]:
    q = service.lend_visible(user)
    if state:
        q = q.where(LendRequest.state == state)
    return list(session.scalars(q.order_by(LendRequest.requested_at.desc()).limit(500)))


@ledger_router.post("/lend-requests", response_model=LendOut, status_code=201)
def request_lend(body: LendIn, request: Request, user: Actor, session: SessionDep) -> LendRequest:
    """Ask to lend a device to another unit or person; nothing is lent until the administrator approves."""
    lend = run(
        session,
        request,
        lambda: service.request_lend(
            session,
            context(request, user),
            serial=body.serial,
            purpose=body.purpose,
            expected_return_at=body.expected_return_at,
            borrower_user_id=body.borrower_user_id,
            borrower_unit_id=body.borrower_unit_id,
            borrower_name=body.borrower_name,
        ),
    )
    audit(
        session,
        "ledger.lend_requested",
        request=request,
        object_type="lend_request",
        object_id=lend.id,
        details={"device_serial": body.serial},
    )
    session.commit()
    return lend


@ledger_router.post("/lend-requests/{request_id}/approve", response_model=EntryOut, status_code=201)
def approve_lend(
    request_id: int, body: DecisionIn, request: Request, user: Manager, session: SessionDep
) -> LedgerEntry:
    entry = run(
        session,
        request,
        lambda: service.approve_lend(
            session,
            context(request, user),
            request_id,
            note=body.note,
            readings=body.readings.model_dump() if body.readings else None,
            override_reason=body.override_reason,
        ),
    )
    audit(
        session,
        "ledger.lend_approved",
        request=request,
        object_type="lend_request",
        object_id=request_id,
        details={"entry_id": entry.id},
    )
    return _commit_entry(session, request, entry)


@ledger_router.post("/lend-requests/{request_id}/reject", response_model=LendOut)
def reject_lend(request_id: int, body: DecisionIn, request: Request, user: Manager, session: SessionDep) -> LendRequest:
    lend = run(
        session, request, lambda: service.reject_lend(session, context(request, user), request_id, note=body.note)
    )
    audit(session, "ledger.lend_rejected", request=request, object_type="lend_request", object_id=request_id)
    session.commit()
    return lend


# --- units, docks, exports ------------------------------------------------------------------------


@ledger_router.get("/units", response_model=list[UnitOut])
def units(request: Request, ctx: CtxDep, user: Reader, session: SessionDep) -> list[UnitOut]:
    """Each unit with its device administrators and its recorders against its allocation."""
    return [
        UnitOut(
            unit_id=s.unit.id,
            code=s.unit.code,
            name=s.unit.name,
            admins=[AdminOut(id=a.id, username=a.username, display_name=a.display_name) for a in s.admins],
            devices_in_service=s.in_service,
            devices_required=s.required,
            short=s.short,
            by_status=s.counts,
        )
        for s in service.unit_summaries(session, ctx.settings, user)
    ]


@ledger_router.put("/units/{unit_id}/allocation", status_code=204)
def set_allocation(unit_id: int, body: AllocationIn, request: Request, user: Sysadmin, session: SessionDep) -> Response:
    run(
        session,
        request,
        lambda: service.set_allocation(session, context(request, user), unit_id, body.devices_required),
    )
    audit(
        session,
        "ledger.allocation_set",
        request=request,
        object_type="unit",
        object_id=unit_id,
        details={"devices_required": body.devices_required},
    )
    session.commit()
    return Response(status_code=204)


@ledger_router.get("/dock-mismatches", response_model=list[MismatchOut])
def dock_mismatches(user: Exporter, session: SessionDep) -> list[DockMismatch]:
    """Docks by an officer who did not hold the device (for the compliance engine and its reviewers)."""
    q = select(DockMismatch).join(Device, Device.id == DockMismatch.device_id)
    if not user.sees_all_units:
        q = q.where(Device.unit_id == user.unit_id)
    return list(session.scalars(q.order_by(DockMismatch.docked_at.desc()).limit(1000)))


def export_period(
    request: Request, user: User, session: Session, unit_id: int | None, since: date | None, until: date | None
) -> tuple[list[exports.PaperRow], exports.Heading]:
    """The rows and heading of a unit's ledger for [since, until] (local dates, inclusive)."""
    ctx = context_of(request)
    tz = ZoneInfo(ctx.settings.default_timezone)
    today = utcnow().astimezone(tz).date()
    since = since or today.replace(day=1)
    until = until or today
    if until < since or (until - since).days > 3660:
        raise HTTPException(422, {"code": "bad_period", "message": "the period is empty or longer than 10 years"})
    unit = session.get(Unit, unit_id or user.unit_id)
    if unit is None or not (user.sees_all_units or unit.id == user.unit_id):
        raise HTTPException(404, {"code": "unknown_unit", "message": "no such unit"})
    start = datetime.combine(since, time(), tz)
    end = datetime.combine(until + timedelta(days=1), time(), tz)
    entries = exports.export_entries(session, unit.id, start, end)
    rows = exports.paper_rows(entries, exports.names_for(session, entries), tz)
    heading = exports.Heading(
        unit.name, since.isoformat(), until.isoformat(), utcnow().astimezone(tz).strftime("%Y-%m-%d %H:%M")
    )
    audit(
        session,
        "ledger.export",
        request=request,
        object_type="unit",
        object_id=unit.id,
        details={
            "since": since.isoformat(),
            "until": until.isoformat(),
            "rows": len(rows),
            "format": request.url.path.rsplit(".", 1)[-1],
        },
    )
    session.commit()
    return rows, heading


def _download(content: bytes, media_type: str, name: str) -> Response:
    return Response(
        content,
        media_type=media_type,
        headers={"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"},
    )


@ledger_router.get(
    "/export.xlsx",
    responses={
        200: {
            "content": {"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": {}},
            "description": "the workbook",
        }
    },
)
def export_xlsx(
    request: Request,
    user: Exporter,
    session: SessionDep,
    unit_id: int | None = None,
    since: date | None = None,
    until: date | None = None,
) -> Response:
    """The unit's ledger for a period as a workbook laid out like the paper 交接登记台账."""
    rows, heading = export_period(request, user, session, unit_id, since, until)
    return _download(
        exports.to_xlsx(rows, heading),
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        f"ledger-{heading.since}-{heading.until}.xlsx",
    )


@ledger_router.get("/export.pdf", responses={200: {"content": {"application/pdf": {}}, "description": "the PDF"}})
def export_pdf(
    request: Request,
    user: Exporter,
    session: SessionDep,
    unit_id: int | None = None,
    since: date | None = None,
    until: date | None = None,
) -> Response:
    """The same ledger as a printable PDF (A4 landscape)."""
    rows, heading = export_period(request, user, session, unit_id, since, until)
    return _download(exports.to_pdf(rows, heading), "application/pdf", f"ledger-{heading.since}-{heading.until}.pdf")
