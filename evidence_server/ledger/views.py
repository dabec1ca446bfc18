"""What the ledger pages show, read as the user may see it: devices and their open checkouts, a device's
timeline, the ledger of a period, lending requests and faults, with the names and units they mention."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from evidence_server.accounts import service as accounts
from evidence_server.accounts.models import Role, Unit, User
from evidence_server.ledger import service
from evidence_server.ledger.models import Device, LedgerEntry, LendRequest
from evidence_server.ledger.rules import REPORTS
from evidence_server.stations.models import Station
from evidence_server.transfers.models import Transfer

TIMELINE_DOCKS = 50


def sees_docks(user: User) -> bool:
    """Who sees a device's docks beside its ledger entries: everyone but officers (their own entries only)."""
    return Role(user.role) != Role.officer


def devices(session: Session, user: User, *, by_unit: bool = True) -> list[Device]:
    q = service.devices_visible(user)
    q = q.order_by(Device.unit_id, Device.serial) if by_unit else q.order_by(Device.serial)
    return list(session.scalars(q))


def entries_by_id(session: Session, ids: Iterable[int | None]) -> dict[int, LedgerEntry]:
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    return {e.id: e for e in session.scalars(select(LedgerEntry).where(LedgerEntry.id.in_(wanted)))}


def entry(session: Session, entry_id: int | None) -> LedgerEntry | None:
    return session.get(LedgerEntry, entry_id) if entry_id is not None else None


def devices_by_id(session: Session, ids: Iterable[int]) -> dict[int, Device]:
    wanted = set(ids)
    if not wanted:
        return {}
    return {d.id: d for d in session.scalars(select(Device).where(Device.id.in_(wanted)))}


def device(session: Session, device_id: int) -> Device | None:
    return session.get(Device, device_id)


def display_names(session: Session, ids: Iterable[int | None]) -> dict[int, str | None]:
    return {i: u.display_name for i, u in accounts.users_by_id(session, ids).items()}


def unit_people(session: Session, unit_id: int) -> dict[int, str | None]:
    """The display names of a unit's users, by id."""
    return {u.id: u.display_name for u in session.scalars(select(User).where(User.unit_id == unit_id))}


def unit_officers(session: Session, unit_id: int) -> list[User]:
    """The unit's active officers, by username: who a device may be checked out to."""
    q = select(User).where(User.unit_id == unit_id, User.active.is_(True), User.role == Role.officer.value)
    return list(session.scalars(q.order_by(User.username)))


def station(session: Session, station_id: int | None) -> Station | None:
    return session.get(Station, station_id) if station_id is not None else None


def timeline(session: Session, user: User, device: Device, docks: int = TIMELINE_DOCKS) -> list[dict[str, Any]]:
    """The device's entries (as this user may see them) and, for those who see them, its docks, newest first."""
    items: list[dict[str, Any]] = [
        {"at": e.occurred_at, "type": "entry", "entry": e}
        for e in session.scalars(service.entries_visible(user).where(LedgerEntry.device_id == device.id))
    ]
    if sees_docks(user):
        stations = {s.id: s.name for s in session.scalars(select(Station))}
        q = select(Transfer).where(Transfer.device_serial == device.serial).order_by(Transfer.docked_at.desc())
        for t in session.scalars(q.limit(docks)):
            items.append({"at": t.docked_at, "type": "dock", "dock": t, "station": stations.get(t.station_id)})
    return sorted(items, key=lambda i: (i["at"], getattr(i.get("entry"), "seq", 0)), reverse=True)


def period_entries(
    session: Session, user: User, unit: Unit | None, start: datetime, end: datetime, limit: int = 1000
) -> list[LedgerEntry]:
    """The ledger between ``start`` and ``end`` as this user may see it (one unit's, for those who see several)."""
    q = service.entries_visible(user).where(LedgerEntry.occurred_at >= start, LedgerEntry.occurred_at < end)
    if unit is not None and Role(user.role) != Role.officer:  # an officer's own entries are few: all of them
        q = q.where(LedgerEntry.unit_id == unit.id)
    return list(session.scalars(q.order_by(LedgerEntry.occurred_at.desc(), LedgerEntry.id.desc()).limit(limit)))


def lend_requests(session: Session, user: User, limit: int = 200) -> list[LendRequest]:
    return list(session.scalars(service.lend_visible(user).order_by(LendRequest.requested_at.desc()).limit(limit)))


def fault_reports(session: Session, user: User, limit: int = 500) -> list[LedgerEntry]:
    q = service.entries_visible(user).where(LedgerEntry.kind.in_([k.value for k in REPORTS]))
    return list(session.scalars(q.order_by(LedgerEntry.occurred_at.desc()).limit(limit)))
