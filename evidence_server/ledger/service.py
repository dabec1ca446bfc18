"""The ledger's operations on the database: each one locks the device, applies the rules, appends an entry.

Callers commit. A rule refusal raises ``RuleError``; two writers racing on one device end with one
entry and one ``RuleError("concurrent_change")`` (or, on PostgreSQL, a clean state error for the
second, since the device row is locked with ``SELECT … FOR UPDATE``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import Request
from sqlalchemy import Select, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from evidence_server.accounts.models import Role, Unit, User
from evidence_server.audit.evidence import fields_of
from evidence_server.audit.service import record as audit
from evidence_server.db import utcnow
from evidence_server.ledger.models import (
    ENTRY_EVIDENCE,
    Device,
    DeviceReading,
    LedgerEntry,
    LendRequest,
    UnitAllocation,
)
from evidence_server.ledger.rules import (
    HAND_OUT,
    REPORTS,
    Condition,
    DeviceState,
    Kind,
    Readings,
    RuleError,
    Status,
    Thresholds,
    check_corrections,
    entry_time,
    merge_readings,
    next_state,
    precheck,
)
from evidence_server.transfers.models import Transfer

#: who keeps a unit's register and ledger (device_admin: their own unit; sysadmin: every unit)
MANAGERS: tuple[Role, ...] = (Role.device_admin, Role.sysadmin)
#: who reads ledger entries (officers: their own; unit roles: their unit; supervisors: all)
READERS: tuple[Role, ...] = (Role.officer, Role.device_admin, Role.legal_affairs, Role.auditor, Role.sysadmin)
#: who may export a unit's ledger
EXPORTERS: tuple[Role, ...] = (Role.device_admin, Role.legal_affairs, Role.auditor, Role.sysadmin)
#: who may check a device out or report a fault
ACTORS: tuple[Role, ...] = (Role.officer, *MANAGERS)


def is_manager(user: User) -> bool:
    return Role(user.role) in MANAGERS


def manages(user: User, unit_id: int) -> bool:
    return Role(user.role) == Role.sysadmin or (Role(user.role) == Role.device_admin and user.unit_id == unit_id)


# --- what a user may see ------------------------------------------------------------------------


def devices_visible(user: User) -> Select[Device]:
    q = select(Device)
    return q if user.sees_all_units else q.where(Device.unit_id == user.unit_id)


def entries_visible(user: User) -> Select[LedgerEntry]:
    """Officers their own entries; unit roles their unit's (and lends to it); supervisors all."""
    q = select(LedgerEntry)
    if user.sees_all_units:
        return q
    if Role(user.role) == Role.officer:
        return q.where(or_(LedgerEntry.officer_id == user.id, LedgerEntry.recorded_by_id == user.id))
    return q.where(or_(LedgerEntry.unit_id == user.unit_id, LedgerEntry.borrower_unit_id == user.unit_id))


def unknown_device(serial: str) -> RuleError:
    """The one refusal for a device that does not exist and for another unit's: they read the same."""
    return RuleError("unknown_device", f"no device {serial!r} in your register")


def lend_visible(user: User) -> Select[LendRequest]:
    """Officers their own requests; unit roles those of their unit and those lending to it; supervisors all."""
    q = select(LendRequest)
    if user.sees_all_units:
        return q
    if Role(user.role) == Role.officer:
        return q.where(LendRequest.requested_by_id == user.id)
    return q.where((LendRequest.unit_id == user.unit_id) | (LendRequest.borrower_unit_id == user.unit_id))


def find_device(session: Session, user: User, serial: str) -> Device:
    device = session.scalar(devices_visible(user).where(Device.serial == serial))
    if device is None:
        raise unknown_device(serial)
    return device


def _lock(session: Session, serial: str) -> Device:
    """The device row, locked until commit: ``FOR UPDATE`` on PostgreSQL; SQLite has no row locks, so
    a no-op write takes the database's write lock first and the read that follows is current."""
    if session.get_bind().dialect.name == "sqlite":
        session.execute(
            update(Device)
            .where(Device.serial == serial)
            .values(version=Device.version)
            .execution_options(synchronize_session=False)
        )
    device = session.scalar(
        select(Device).where(Device.serial == serial).with_for_update().execution_options(populate_existing=True)
    )
    if device is None:
        raise unknown_device(serial)
    return device


def _lock_for(session: Session, actor: User, serial: str) -> Device:
    """The device, locked, when the actor's unit owns it; another unit's answers as an unknown one."""
    device = _lock(session, serial)
    if not actor.sees_all_units and device.unit_id != actor.unit_id:
        raise unknown_device(serial)
    return device


def state_of(device: Device) -> DeviceState:
    return DeviceState(Status(device.status), device.open_checkout_id)


# --- appending an entry -----------------------------------------------------------------------


@dataclass
class Context:
    """What every operation needs besides the session: the actor, the settings and the clock."""

    actor: User | None
    settings: Any
    now: datetime = field(default_factory=utcnow)

    @property
    def grace(self) -> timedelta:
        return timedelta(minutes=self.settings.late_entry_grace_minutes)


def _append(
    session: Session,
    ctx: Context,
    device: Device,
    kind: Kind,
    *,
    occurred_at: datetime | None,
    condition: Condition | None = None,
    **values: Any,
) -> LedgerEntry:
    """Check the transition and the times, insert the entry and move the device's state, atomically."""
    state = next_state(state_of(device), kind, entry_id=0, condition=condition)
    last_seq, last_at = session.execute(
        select(func.max(LedgerEntry.seq), func.max(LedgerEntry.occurred_at)).where(LedgerEntry.device_id == device.id)
    ).one()
    recorded_at = utcnow()  # read after the device lock: later than the entry that held it before us
    occurred, late = entry_time(
        occurred_at,
        recorded_at,
        last_occurred_at=_aware(last_at),
        grace=ctx.grace,
        may_backdate=ctx.actor is None or is_manager(ctx.actor),
    )
    entry = LedgerEntry(
        device_id=device.id,
        unit_id=device.unit_id,
        seq=(last_seq or 0) + 1,
        kind=kind.value,
        occurred_at=occurred,
        recorded_at=recorded_at,
        late=late,
        status_after=state.status.value,
        recorded_by_id=ctx.actor.id if ctx.actor else None,
        condition=condition.value if condition else None,
        **values,
    )
    session.add(entry)
    try:
        session.flush()
        device.status = state.status.value
        device.open_checkout_id = entry.id if kind in HAND_OUT else state.open_checkout
        session.flush()
    except (IntegrityError, StaleDataError) as exc:
        session.rollback()
        raise RuleError(
            "concurrent_change", "someone else changed this device at the same moment; reload and try again"
        ) from exc
    return entry


def _aware(value: datetime | None) -> datetime | None:
    """Defensive: an aggregate may come back naive (UTC) or as text on SQLite."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


# --- the register -----------------------------------------------------------------------------


def register_device(
    session: Session,
    ctx: Context,
    *,
    serial: str,
    unit_id: int,
    model: str | None,
    family: str | None,
    occurred_at: datetime | None = None,
) -> LedgerEntry:
    """Add a device to the register (or register one first seen at a dock) with a ``register`` entry."""
    assert ctx.actor is not None
    if not manages(ctx.actor, unit_id):
        raise RuleError("other_unit", "you keep the register of your own unit only")
    if session.get(Unit, unit_id) is None:
        raise RuleError("unknown_unit", "no such unit")
    device = session.scalar(select(Device).where(Device.serial == serial))
    if device is None:
        device = Device(serial=serial, unit_id=unit_id, model=model, family=family, status=Status.unregistered.value)
        session.add(device)
        try:
            session.flush()
        except IntegrityError as exc:
            session.rollback()
            raise RuleError("concurrent_change", "the device was registered at the same moment") from exc
    device = _lock(session, serial)
    if device.unit_id != unit_id and Role(ctx.actor.role) != Role.sysadmin:
        # a serial is one physical recorder: another unit's, even one only seen at its dock, is not taken over
        raise RuleError("already_registered", f"device {serial} is already known; ask a system administrator")
    if device.status == Status.unregistered.value:
        device.unit_id, device.model, device.family = unit_id, model or device.model, family or device.family
    return _append(
        session,
        ctx,
        device,
        Kind.register,
        occurred_at=occurred_at,
        description=f"{model or ''} {family or ''}".strip() or None,
    )


def unit_device_counts(session: Session, unit_ids: list[int]) -> dict[int, dict[str, int]]:
    counts: dict[int, dict[str, int]] = {u: {} for u in unit_ids}
    rows = session.execute(
        select(Device.unit_id, Device.status, func.count())
        .where(Device.unit_id.in_(unit_ids))
        .group_by(Device.unit_id, Device.status)
    )
    for unit_id, status, n in rows:
        counts[unit_id][status] = n
    return counts


IN_SERVICE = (Status.available, Status.checked_out, Status.in_repair)


@dataclass
class UnitSummary:
    unit: Unit
    admins: list[User]
    counts: dict[str, int]
    required: int

    @property
    def in_service(self) -> int:
        return sum(self.counts.get(s.value, 0) for s in IN_SERVICE)

    @property
    def short(self) -> bool:
        """Fewer recorders in service than the unit's allocation: shown with a warning."""
        return self.in_service < self.required


def unit_summaries(session: Session, settings: Any, user: User) -> list[UnitSummary]:
    q = select(Unit).order_by(Unit.code)
    if not user.sees_all_units:
        q = q.where(Unit.id == user.unit_id)
    units = list(session.scalars(q))
    ids = [u.id for u in units]
    counts = unit_device_counts(session, ids)
    required = dict(
        session.execute(
            select(UnitAllocation.unit_id, UnitAllocation.devices_required).where(UnitAllocation.unit_id.in_(ids))
        ).all()
    )
    admins: dict[int, list[User]] = {u: [] for u in ids}
    for admin in session.scalars(
        select(User)
        .where(User.unit_id.in_(ids), User.role == Role.device_admin.value, User.active.is_(True))
        .order_by(User.username)
    ):
        admins[admin.unit_id].append(admin)
    return [UnitSummary(u, admins[u.id], counts[u.id], required.get(u.id, settings.devices_per_unit)) for u in units]


def set_allocation(session: Session, ctx: Context, unit_id: int, devices_required: int) -> UnitAllocation:
    assert ctx.actor is not None
    if session.get(Unit, unit_id) is None:
        raise RuleError("unknown_unit", "no such unit")
    row = session.get(UnitAllocation, unit_id)
    if row is None:
        row = UnitAllocation(unit_id=unit_id, devices_required=devices_required)
        session.add(row)
    row.devices_required, row.updated_at, row.updated_by_id = devices_required, ctx.now, ctx.actor.id
    session.flush()
    return row


# --- checkout, lend, return -------------------------------------------------------------------


@dataclass
class Task:
    enforcement_matter: str
    expected_return_at: datetime
    case_number: str | None = None
    case_name: str | None = None
    task_start_at: datetime | None = None  # the task's planned or reported start and end, when known
    task_end_at: datetime | None = None


def fresh_readings(session: Session, device: Device, settings: Any, now: datetime) -> tuple[Readings, int] | None:
    """The newest readings a station took of this docked device (reading or dock), if recent enough."""
    since = now - timedelta(seconds=settings.readings_max_age_seconds)
    reading = session.scalar(
        select(DeviceReading)
        .where(DeviceReading.device_id == device.id, DeviceReading.received_at >= since)
        .order_by(DeviceReading.received_at.desc())
        .limit(1)
    )
    dock = session.scalar(
        select(Transfer)
        .where(Transfer.device_serial == device.serial, Transfer.received_at >= since)
        .order_by(Transfer.received_at.desc())
        .limit(1)
    )
    if reading is not None and (dock is None or reading.received_at >= dock.received_at):
        return Readings(
            reading.battery_percent, reading.storage_free_bytes, reading.clock_offset_s, bool(reading.fault_found)
        ), reading.station_id
    if dock is not None:
        return Readings(dock.battery_percent, dock.storage_free_bytes, dock.clock_offset_s), dock.station_id
    return None


def _checks(
    session: Session, ctx: Context, device: Device, manual: dict[str, Any], override_reason: str | None
) -> dict[str, Any]:
    """Run the pre-checkout checks; the entry's check columns, or RuleError when they fail unexcused."""
    station = fresh_readings(session, device, ctx.settings, ctx.now)
    if station is None and all(
        manual.get(k) is None for k in ("battery_percent", "storage_free_bytes", "clock_offset_s")
    ):
        raise RuleError(
            "no_readings", "the device is not docked at a station: enter its battery, free storage and clock offset"
        )
    readings, source = merge_readings(station[0] if station else None, manual)
    failures = precheck(readings, Thresholds.from_settings(ctx.settings))
    override_reason = (override_reason or "").strip() or None
    if failures and override_reason is None:
        raise RuleError(
            "checks_failed", f"the device failed the pre-checkout checks: {', '.join(failures)}", failures=failures
        )
    if failures and not (ctx.actor and is_manager(ctx.actor)):
        raise RuleError("override_not_allowed", "only an administrator may override failed checks", failures=failures)
    return dict(
        battery_percent=readings.battery_percent,
        storage_free_bytes=readings.storage_free_bytes,
        clock_offset_s=readings.clock_offset_s,
        fault_found=readings.fault_found,
        readings_source=source,
        readings_station_id=station[1] if station and source != "manual" else None,
        check_failures=failures,
        override=bool(failures),
        override_reason=override_reason if failures else None,
    )


def _available(session: Session, device: Device, kind: Kind) -> None:
    """Refuse to hand out a device that is not available, saying who has it since when."""
    try:
        next_state(state_of(device), kind)
    except RuleError as exc:
        out = session.get(LedgerEntry, device.open_checkout_id) if device.open_checkout_id else None
        if out is not None:
            who = out.officer_name or out.borrower_name or ""
            exc.facts.update(holder=who, holder_officer_no=out.officer_no, since=out.occurred_at.isoformat())
            exc.message = (
                f"device {device.serial} is {device.status}: out with {who} since {out.occurred_at:%Y-%m-%d %H:%M} UTC"
            )
            exc.args = (exc.message,)
        raise


def _officer_for(session: Session, actor: User, device: Device, officer_id: int | None) -> User:
    if Role(actor.role) == Role.officer:
        if officer_id not in (None, actor.id):
            raise RuleError("not_yourself", "an officer checks devices out for themselves only")
        return actor
    officer = session.get(User, officer_id) if officer_id is not None else None
    if officer is None or not officer.active or officer.unit_id != device.unit_id:  # one answer for all three
        raise RuleError(
            "bad_officer", "choose an officer of the device's unit (lending to another unit needs an approval)"
        )
    return officer


def _check_task(task: Task, occurred_at: datetime | None, now: datetime) -> None:
    if not task.enforcement_matter.strip():
        raise RuleError("no_matter", "the enforcement matter is required")
    if task.expected_return_at <= (occurred_at or now):
        raise RuleError("bad_return_time", "the expected return must be after the checkout")
    if task.task_start_at and task.task_end_at and task.task_end_at <= task.task_start_at:
        raise RuleError("bad_task_times", "the task must end after it starts")


def checkout(
    session: Session,
    ctx: Context,
    *,
    serial: str,
    task: Task,
    officer_id: int | None = None,
    occurred_at: datetime | None = None,
    readings: dict[str, Any] | None = None,
    override_reason: str | None = None,
) -> LedgerEntry:
    """An officer takes a device for an enforcement task, after the pre-checkout checks (R2, R3)."""
    assert ctx.actor is not None
    device = _lock_for(session, ctx.actor, serial)
    _available(session, device, Kind.checkout)  # a device already out fails before any check
    officer = _officer_for(session, ctx.actor, device, officer_id)
    _check_task(task, occurred_at, ctx.now)
    checks = _checks(session, ctx, device, readings or {}, override_reason)
    return _append(
        session,
        ctx,
        device,
        Kind.checkout,
        occurred_at=occurred_at,
        officer_id=officer.id,
        officer_no=officer.officer_no,
        officer_name=officer.display_name,
        enforcement_matter=task.enforcement_matter.strip(),
        case_number=task.case_number or None,
        case_name=task.case_name or None,
        expected_return_at=task.expected_return_at,
        task_start_at=task.task_start_at,
        task_end_at=task.task_end_at,
        **checks,
    )


def return_device(
    session: Session,
    ctx: Context,
    *,
    serial: str,
    condition: Condition,
    description: str | None = None,
    occurred_at: datetime | None = None,
    received_by_id: int | None = None,
) -> LedgerEntry:
    """The device comes back: time, condition, who received it. Also evidence the officer is back."""
    assert ctx.actor is not None
    device = _lock_for(session, ctx.actor, serial)
    if device.open_checkout_id is None:
        raise RuleError("not_checked_out", f"device {serial} is not checked out")
    receiver = ctx.actor if received_by_id is None else session.get(User, received_by_id)
    if receiver is None or not receiver.active or not manages(receiver, device.unit_id):
        raise RuleError("bad_receiver", "the receiver must be an administrator of the device's unit")
    out = session.get(LedgerEntry, device.open_checkout_id)
    assert out is not None
    return _append(
        session,
        ctx,
        device,
        Kind.return_,
        occurred_at=occurred_at,
        condition=condition,
        description=(description or "").strip() or None,
        received_by_id=receiver.id,
        refers_to_id=out.id,
        officer_id=out.officer_id,
        officer_no=out.officer_no,
        officer_name=out.officer_name,
        borrower_unit_id=out.borrower_unit_id,
        borrower_name=out.borrower_name,
    )


# --- lending ------------------------------------------------------------------------------------


def request_lend(
    session: Session,
    ctx: Context,
    *,
    serial: str,
    purpose: str,
    expected_return_at: datetime,
    borrower_user_id: int | None = None,
    borrower_unit_id: int | None = None,
    borrower_name: str | None = None,
) -> LendRequest:
    """Ask the unit's administrator to lend a device to another unit or person."""
    assert ctx.actor is not None
    device = _lock_for(session, ctx.actor, serial)
    _available(session, device, Kind.lend)
    borrower = session.get(User, borrower_user_id) if borrower_user_id is not None else None
    if borrower_user_id is not None and (borrower is None or not borrower.active):
        raise RuleError("bad_borrower", "no such borrower")
    if borrower is not None:
        borrower_unit_id = borrower_unit_id or borrower.unit_id
    borrower_name = (borrower_name or "").strip() or None
    if borrower is None and borrower_unit_id is None and borrower_name is None:
        raise RuleError("bad_borrower", "name the borrowing unit or person")
    if borrower_unit_id is not None and session.get(Unit, borrower_unit_id) is None:
        raise RuleError("bad_borrower", "no such unit")
    if borrower_unit_id == device.unit_id and borrower_name is None:
        raise RuleError("bad_borrower", "within the unit, use a normal checkout")
    if not purpose.strip():
        raise RuleError("no_matter", "the purpose is required")
    if expected_return_at <= ctx.now:
        raise RuleError("bad_return_time", "the expected return must be in the future")
    request = LendRequest(
        device_id=device.id,
        unit_id=device.unit_id,
        requested_by_id=ctx.actor.id,
        requested_at=ctx.now,
        borrower_user_id=borrower.id if borrower else None,
        borrower_unit_id=borrower_unit_id,
        borrower_name=borrower_name,
        purpose=purpose.strip(),
        expected_return_at=expected_return_at,
    )
    session.add(request)
    session.flush()
    return request


def _pending(session: Session, ctx: Context, request_id: int) -> LendRequest:
    assert ctx.actor is not None
    request = session.get(LendRequest, request_id)
    if request is None or not (ctx.actor.sees_all_units or request.unit_id == ctx.actor.unit_id):
        raise RuleError("unknown_request", "no such lend request")
    if not manages(ctx.actor, request.unit_id):
        raise RuleError("other_unit", "only the lending unit's administrator decides")
    if request.state != "pending":
        raise RuleError("request_decided", f"the request was already {request.state}")
    return request


def approve_lend(
    session: Session,
    ctx: Context,
    request_id: int,
    *,
    note: str | None = None,
    readings: dict[str, Any] | None = None,
    override_reason: str | None = None,
) -> LedgerEntry:
    """The administrator approves: the device goes out on a ``lend`` entry (the only way to lend)."""
    request = _pending(session, ctx, request_id)
    device = session.get(Device, request.device_id)
    assert device is not None
    device = _lock(session, device.serial)
    _available(session, device, Kind.lend)
    checks = _checks(session, ctx, device, readings or {}, override_reason)
    borrower = session.get(User, request.borrower_user_id) if request.borrower_user_id else None
    entry = _append(
        session,
        ctx,
        device,
        Kind.lend,
        occurred_at=None,
        lend_request_id=request.id,
        officer_id=borrower.id if borrower else None,
        officer_no=borrower.officer_no if borrower else None,
        officer_name=borrower.display_name if borrower else request.borrower_name,
        borrower_unit_id=request.borrower_unit_id,
        borrower_name=request.borrower_name,
        enforcement_matter=request.purpose,
        expected_return_at=request.expected_return_at,
        description=(note or "").strip() or None,
        **checks,
    )
    request.state, request.decided_at, request.decision_note = "approved", ctx.now, (note or "").strip() or None
    request.decided_by_id = ctx.actor.id if ctx.actor else None
    session.flush()
    return entry


def reject_lend(session: Session, ctx: Context, request_id: int, *, note: str | None = None) -> LendRequest:
    request = _pending(session, ctx, request_id)
    request.state, request.decided_at, request.decision_note = "rejected", ctx.now, (note or "").strip() or None
    request.decided_by_id = ctx.actor.id if ctx.actor else None
    session.flush()
    return request


# --- faults, damage, loss, back in service, retirement, corrections ---------------------------


def report(
    session: Session, ctx: Context, *, serial: str, kind: Kind, description: str, occurred_at: datetime | None = None
) -> LedgerEntry:
    """An officer or administrator reports a fault, damage or loss; the device's status changes."""
    assert ctx.actor is not None and kind in REPORTS
    if not description.strip():
        raise RuleError("no_description", "describe what happened")
    device = _lock(session, serial)
    holder = session.get(LedgerEntry, device.open_checkout_id) if device.open_checkout_id else None
    is_holder = holder is not None and holder.officer_id == ctx.actor.id
    if not is_holder and not ctx.actor.sees_all_units and device.unit_id != ctx.actor.unit_id:
        raise unknown_device(serial)  # the holder of a lent device reports it; no one else of another unit
    return _append(
        session,
        ctx,
        device,
        kind,
        occurred_at=occurred_at,
        description=description.strip(),
        refers_to_id=holder.id if holder else None,
        officer_id=holder.officer_id if holder else None,
        officer_no=holder.officer_no if holder else None,
        officer_name=holder.officer_name if holder else None,
    )


def change_service(
    session: Session,
    ctx: Context,
    *,
    serial: str,
    kind: Kind,
    description: str | None,
    occurred_at: datetime | None = None,
) -> LedgerEntry:
    """An administrator puts a device back in service (``restored``) or takes it out for good (``retire``)."""
    assert ctx.actor is not None and kind in (Kind.restored, Kind.retire)
    device = _lock_for(session, ctx.actor, serial)
    return _append(session, ctx, device, kind, occurred_at=occurred_at, description=(description or "").strip() or None)


def correct(session: Session, ctx: Context, *, entry_id: int, changes: dict[str, Any], reason: str) -> LedgerEntry:
    """Correct a mistake with a new entry that references the old one (the old one never changes)."""
    assert ctx.actor is not None
    target = session.get(LedgerEntry, entry_id)
    if target is None or not (ctx.actor.sees_all_units or target.unit_id == ctx.actor.unit_id):
        raise RuleError("unknown_entry", "no such ledger entry")
    if not reason.strip():
        raise RuleError("no_description", "say why the entry is corrected")
    clean = check_corrections(changes)
    device = session.get(Device, target.device_id)
    assert device is not None
    device = _lock_for(session, ctx.actor, device.serial)
    return _append(
        session,
        ctx,
        device,
        Kind.correction,
        occurred_at=None,
        refers_to_id=target.id,
        corrections=clean,
        description=reason.strip(),
    )


def audit_entry(session: Session, request: Request, entry: LedgerEntry, serial: str) -> None:
    details: dict[str, Any] = {
        "device_serial": serial,
        "occurred_at": entry.occurred_at.isoformat(),
        "late": entry.late,
        "entry": fields_of(entry, ENTRY_EVIDENCE),
    }
    if entry.override:
        details |= {"override_reason": entry.override_reason, "failures": entry.check_failures}
    audit(
        session,
        f"ledger.{entry.kind}",
        request=request,
        object_type="ledger_entry",
        object_id=entry.id,
        details=details,
    )
    if entry.late:
        audit(
            session,
            "ledger.late_entry",
            request=request,
            object_type="ledger_entry",
            object_id=entry.id,
            details={
                "device_serial": serial,
                "occurred_at": entry.occurred_at.isoformat(),
                "recorded_at": entry.recorded_at.isoformat(),
                "kind": entry.kind,
            },
        )
