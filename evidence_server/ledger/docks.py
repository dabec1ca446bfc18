"""What stations tell the ledger: readings of docked devices, docks (unknown devices, docks by a
non-holder), and each device's clock offset over time."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from evidence_server.db import utcnow
from evidence_server.ledger.models import Device, DeviceReading, DockMismatch, LedgerEntry
from evidence_server.ledger.rules import HAND_OUT, Status, dock_mismatch, holder_at
from evidence_server.stations.models import Station, StationUnit
from evidence_server.transfers.models import Transfer


def _device_seen(
    session: Session, serial: str, unit_id: int, family: str | None, model: str | None, seen_at: datetime
) -> Device:
    """The register's device, auto-registered as ``unregistered`` when a station first meets it."""
    device = session.scalar(select(Device).where(Device.serial == serial))
    if device is not None:
        return device
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    session.execute(
        insert(Device)
        .values(
            serial=serial,
            unit_id=unit_id,
            family=family,
            model=model,
            status=Status.unregistered.value,
            version=1,
            created_at=utcnow(),
            first_seen_at=seen_at,
        )
        .on_conflict_do_nothing(index_elements=["serial"])
    )
    device = session.scalar(select(Device).where(Device.serial == serial))
    assert device is not None
    return device


def submit_reading(session: Session, station: Station, serial: str, data: dict[str, Any]) -> DeviceReading:
    """A station read battery, storage and clock from a docked device (for the checkout checks)."""
    read_at: datetime = data["read_at"]
    clock: datetime | None = data.get("clock")
    device = _device_seen(session, serial, station.unit_id, data.get("family"), data.get("model"), read_at)
    reading = DeviceReading(
        device_id=device.id,
        station_id=station.id,
        read_at=read_at,
        battery_percent=data.get("battery_percent"),
        storage_total_bytes=data.get("storage_total_bytes"),
        storage_free_bytes=data.get("storage_free_bytes"),
        device_clock=clock,
        clock_offset_s=(clock - read_at).total_seconds() if clock else None,
        fault_found=data.get("fault_found"),
        fault_detail=data.get("fault_detail"),
    )
    session.add(reading)
    session.flush()
    return reading


@dataclass(frozen=True)
class DockAccess:
    """Whether a station may take in a device, and for which unit."""

    allowed: bool
    unit_id: int  # the unit its transfer and recordings belong to
    own_unit: bool  # the device is (or will be, as pending) of the station's own unit


def dock_access(session: Session, station: Station, serial: str) -> DockAccess:
    """A station takes in devices of its unit, devices of units a system administrator let it serve, and
    devices never seen before (registered as pending in its unit until a device administrator confirms
    them). Any other device belongs to another unit and is refused."""
    device = session.scalar(select(Device).where(Device.serial == serial))
    if device is None or device.unit_id == station.unit_id:
        return DockAccess(True, station.unit_id, True)
    served = session.get(StationUnit, (station.id, device.unit_id)) is not None
    return DockAccess(served, device.unit_id, False)


def on_dock(session: Session, transfer: Transfer) -> DockMismatch | None:
    """A new dock: register an unknown device (pending, in the station's unit), and note a dock by an
    officer who does not hold it (for devices of the station's own unit only: a station of another unit
    writes nothing into a device's records)."""
    info = transfer.device or {}
    device = _device_seen(
        session, transfer.device_serial, transfer.unit_id, info.get("family"), info.get("model"), transfer.docked_at
    )
    station = session.get(Station, transfer.station_id)
    if station is None or device.unit_id != station.unit_id:
        return None
    hand_outs = session.scalars(
        select(LedgerEntry).where(LedgerEntry.device_id == device.id, LedgerEntry.kind.in_([k.value for k in HAND_OUT]))
    ).all()
    holder = holder_at(hand_outs, transfer.docked_at)
    reason = dock_mismatch(holder, transfer.officer_no)
    if reason is None:
        return None
    mismatch = DockMismatch(
        device_id=device.id,
        transfer_id=transfer.id,
        docked_at=transfer.docked_at,
        docked_officer_no=transfer.officer_no,
        reason=reason,
        holder_entry_id=getattr(holder, "id", None),
        holder_officer_no=holder.officer_no if holder else None,
    )
    session.add(mismatch)
    session.flush()
    return mismatch


@dataclass(frozen=True)
class ClockSample:
    at: datetime
    offset_s: float
    source: str  # dock | reading | checkout
    station_id: int | None


def clock_history(session: Session, device: Device, limit: int = 200) -> list[ClockSample]:
    """The device's clock offset against the server over time: every dock, reading and checkout check."""
    samples = [
        ClockSample(t.docked_at, t.clock_offset_s, "dock", t.station_id)
        for t in session.scalars(
            select(Transfer)
            .where(Transfer.device_serial == device.serial, Transfer.clock_offset_s.is_not(None))
            .order_by(Transfer.docked_at.desc())
            .limit(limit)
        )
        if t.clock_offset_s is not None
    ]
    samples += [
        ClockSample(r.read_at, r.clock_offset_s, "reading", r.station_id)
        for r in session.scalars(
            select(DeviceReading)
            .where(DeviceReading.device_id == device.id, DeviceReading.clock_offset_s.is_not(None))
            .order_by(DeviceReading.read_at.desc())
            .limit(limit)
        )
        if r.clock_offset_s is not None
    ]
    samples += [
        ClockSample(e.occurred_at, e.clock_offset_s, "checkout", e.readings_station_id)
        for e in session.scalars(
            select(LedgerEntry)
            .where(
                LedgerEntry.device_id == device.id,
                LedgerEntry.readings_source == "manual",
                LedgerEntry.clock_offset_s.is_not(None),
            )
            .limit(limit)
        )
        if e.clock_offset_s is not None
    ]
    return sorted(samples, key=lambda s: s.at, reverse=True)[:limit]
