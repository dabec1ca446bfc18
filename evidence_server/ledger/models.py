"""The device register and the checkout ledger (交接登记台账).

``ledger_entries`` is append-only: the migration installs database triggers that refuse UPDATE and
DELETE (and TRUNCATE on PostgreSQL). A mistake is corrected by a new ``correction`` entry that
references the old one. ``devices.status`` and ``devices.open_checkout_id`` are a cache of the
ledger's replay (``rules.replay``), written in the same transaction as the entry that changes them;
``devices.version`` is an optimistic lock, and ``(device_id, seq)`` is unique, so two concurrent
entries on one device cannot both be accepted.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from evidence_server.db import Base, utcnow


class Device(Base):
    """A recorder in the register (R1): serial, model, driver family, owning unit, current status."""

    __tablename__ = "devices"
    id: Mapped[int] = mapped_column(primary_key=True)
    serial: Mapped[str] = mapped_column(String(64), unique=True)
    model: Mapped[str | None] = mapped_column(String(200))
    family: Mapped[str | None] = mapped_column(String(64))
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"), index=True)
    status: Mapped[str] = mapped_column(String(16), default="available")
    #: the checkout or lend entry the device is out on (no FK: ledger_entries references devices)
    open_checkout_id: Mapped[int | None]
    version: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    first_seen_at: Mapped[datetime | None]  # set when the device was auto-registered at a dock

    __mapper_args__ = {"version_id_col": version}


class LedgerEntry(Base):
    """One line of the ledger. Never updated or deleted (enforced by triggers)."""

    __tablename__ = "ledger_entries"
    __table_args__ = (
        UniqueConstraint("device_id", "seq", name="uq_ledger_entries_device_seq"),
        Index("ix_ledger_entries_unit_occurred", "unit_id", "occurred_at"),
        # checkouts in a period with their unit and id (the dashboard's compliance rates, from the index alone)
        Index("ix_ledger_entries_kind_occurred", "kind", "occurred_at", postgresql_include=["unit_id", "id"]),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    device_id: Mapped[int] = mapped_column(ForeignKey("devices.id"), index=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"))  # the device's unit at the time
    seq: Mapped[int]  # the device's version this entry produced: 1, 2, 3 …
    kind: Mapped[str] = mapped_column(String(16))
    occurred_at: Mapped[datetime] = mapped_column(index=True)  # when it happened (the rules use this)
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)  # when it was written down
    late: Mapped[bool] = mapped_column(default=False)
    recorded_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    status_after: Mapped[str] = mapped_column(String(16))

    # who holds the device (checkout, lend) or reported it (fault, damage, loss)
    officer_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    officer_no: Mapped[str | None] = mapped_column(String(32))
    officer_name: Mapped[str | None] = mapped_column(String(200))
    borrower_unit_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"))
    borrower_name: Mapped[str | None] = mapped_column(String(200))
    lend_request_id: Mapped[int | None] = mapped_column(ForeignKey("lend_requests.id"))

    # the enforcement task (checkout, lend)
    enforcement_matter: Mapped[str | None] = mapped_column(String(500))
    case_number: Mapped[str | None] = mapped_column(String(100))
    case_name: Mapped[str | None] = mapped_column(String(300))
    expected_return_at: Mapped[datetime | None]
    # the enforcement task's planned or reported start and end (footage is judged against these)
    task_start_at: Mapped[datetime | None]
    task_end_at: Mapped[datetime | None]

    # the pre-checkout checks (R3)
    battery_percent: Mapped[int | None]
    storage_free_bytes: Mapped[int | None] = mapped_column(BigInteger)
    clock_offset_s: Mapped[float | None]
    fault_found: Mapped[bool | None]
    readings_source: Mapped[str | None] = mapped_column(String(16))  # station | manual | mixed
    readings_station_id: Mapped[int | None] = mapped_column(ForeignKey("stations.id"))
    check_failures: Mapped[list[str] | None] = mapped_column(JSON)
    override: Mapped[bool] = mapped_column(default=False)
    override_reason: Mapped[str | None] = mapped_column(String(500))

    # return
    condition: Mapped[str | None] = mapped_column(String(16))  # good | damaged | faulty
    received_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))

    # fault, damage, loss, repaired, retire, register, correction
    description: Mapped[str | None] = mapped_column(Text)
    #: a return's checkout, or the entry a correction corrects
    refers_to_id: Mapped[int | None] = mapped_column(ForeignKey("ledger_entries.id"), index=True)
    corrections: Mapped[dict[str, Any] | None] = mapped_column(JSON)


#: every field of a ledger entry but its id: the audit entry that records it holds them all (see
#: evidence_server.binding), so an entry edited in the database is named, field by field
ENTRY_EVIDENCE = tuple(c.key for c in LedgerEntry.__table__.columns if c.key != "id")


class LendRequest(Base):
    """A request to lend a device outside the normal flow; only its approval writes the ledger entry."""

    __tablename__ = "lend_requests"
    id: Mapped[int] = mapped_column(primary_key=True)
    device_id: Mapped[int] = mapped_column(ForeignKey("devices.id"), index=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"), index=True)  # the lending unit
    requested_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    requested_at: Mapped[datetime] = mapped_column(default=utcnow)
    borrower_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    borrower_unit_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"))
    borrower_name: Mapped[str | None] = mapped_column(String(200))
    purpose: Mapped[str] = mapped_column(String(500))
    expected_return_at: Mapped[datetime]
    state: Mapped[str] = mapped_column(String(16), default="pending")  # pending | approved | rejected
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    decided_at: Mapped[datetime | None]
    decision_note: Mapped[str | None] = mapped_column(String(500))


class DeviceReading(Base):
    """Battery, storage and clock read from a docked device by a station, for the checkout checks."""

    __tablename__ = "device_readings"
    id: Mapped[int] = mapped_column(primary_key=True)
    device_id: Mapped[int] = mapped_column(ForeignKey("devices.id"), index=True)
    station_id: Mapped[int] = mapped_column(ForeignKey("stations.id"))
    read_at: Mapped[datetime]
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    battery_percent: Mapped[int | None]
    storage_total_bytes: Mapped[int | None] = mapped_column(BigInteger)
    storage_free_bytes: Mapped[int | None] = mapped_column(BigInteger)
    device_clock: Mapped[datetime | None]
    clock_offset_s: Mapped[float | None]
    fault_found: Mapped[bool | None]
    fault_detail: Mapped[str | None] = mapped_column(String(500))


class DockMismatch(Base):
    """A device docked by an officer who does not hold it: evidence for the compliance engine."""

    __tablename__ = "dock_mismatches"
    id: Mapped[int] = mapped_column(primary_key=True)
    device_id: Mapped[int] = mapped_column(ForeignKey("devices.id"), index=True)
    transfer_id: Mapped[str] = mapped_column(ForeignKey("transfers.id"), unique=True)
    docked_at: Mapped[datetime]
    docked_officer_no: Mapped[str | None] = mapped_column(String(32))
    holder_entry_id: Mapped[int | None] = mapped_column(ForeignKey("ledger_entries.id"))
    holder_officer_no: Mapped[str | None] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(String(32))  # other_holder | never_checked_out
    noticed_at: Mapped[datetime] = mapped_column(default=utcnow)


class UnitAllocation(Base):
    """How many recorders a unit must have, when not the default ``Settings.devices_per_unit``."""

    __tablename__ = "unit_allocations"
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"), primary_key=True)
    devices_required: Mapped[int]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
