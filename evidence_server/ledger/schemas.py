"""What the ledger API accepts and answers."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from evidence_server.ledger.rules import Condition

SERIAL = r"^[A-Za-z0-9_.\-]+$"


class DeviceIn(BaseModel):
    serial: str = Field(min_length=1, max_length=64, pattern=SERIAL)
    unit_id: int | None = None  # default: the caller's unit
    model: str | None = Field(default=None, max_length=200)
    family: str | None = Field(default=None, max_length=64)
    occurred_at: AwareDatetime | None = None


class DeviceOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    serial: str
    model: str | None
    family: str | None
    unit_id: int
    status: str
    open_checkout_id: int | None
    first_seen_at: datetime | None
    holder_officer_no: str | None = None
    holder_name: str | None = None
    out_since: datetime | None = None
    expected_return_at: datetime | None = None


class ReadingsIn(BaseModel):
    battery_percent: int | None = Field(default=None, ge=0, le=100)
    storage_free_bytes: int | None = Field(default=None, ge=0)
    clock_offset_s: float | None = Field(default=None, ge=-10 * 365 * 86400, le=10 * 365 * 86400)
    fault_found: bool = False


class CheckoutIn(BaseModel):
    serial: str = Field(min_length=1, max_length=64)
    officer_id: int | None = None  # default: the caller (an officer checking out for themselves)
    enforcement_matter: str = Field(min_length=1, max_length=500)
    case_number: str | None = Field(default=None, max_length=100)
    case_name: str | None = Field(default=None, max_length=300)
    expected_return_at: AwareDatetime
    task_start_at: AwareDatetime | None = None  # the task's planned or reported start and end
    task_end_at: AwareDatetime | None = None
    occurred_at: AwareDatetime | None = None
    readings: ReadingsIn | None = None  # default: what a station read from the docked device
    override_reason: str | None = Field(default=None, max_length=500)


class ReturnIn(BaseModel):
    serial: str = Field(min_length=1, max_length=64)
    condition: Condition
    description: str | None = Field(default=None, max_length=2000)
    occurred_at: AwareDatetime | None = None
    received_by_id: int | None = None  # default: the caller


class FaultIn(BaseModel):
    serial: str = Field(min_length=1, max_length=64)
    kind: Literal["fault", "damage", "loss"]
    description: str = Field(min_length=1, max_length=2000)
    occurred_at: AwareDatetime | None = None


class ServiceIn(BaseModel):
    description: str | None = Field(default=None, max_length=2000)
    occurred_at: AwareDatetime | None = None


class CorrectionIn(BaseModel):
    entry_id: int
    changes: dict[str, Any]
    reason: str = Field(min_length=1, max_length=2000)


class LendIn(BaseModel):
    serial: str = Field(min_length=1, max_length=64)
    borrower_user_id: int | None = None
    borrower_unit_id: int | None = None
    borrower_name: str | None = Field(default=None, max_length=200)
    purpose: str = Field(min_length=1, max_length=500)
    expected_return_at: AwareDatetime


class DecisionIn(BaseModel):
    note: str | None = Field(default=None, max_length=500)
    readings: ReadingsIn | None = None
    override_reason: str | None = Field(default=None, max_length=500)


class LendOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    device_id: int
    unit_id: int
    requested_by_id: int
    requested_at: datetime
    borrower_user_id: int | None
    borrower_unit_id: int | None
    borrower_name: str | None
    purpose: str
    expected_return_at: datetime
    state: str
    decided_by_id: int | None
    decided_at: datetime | None
    decision_note: str | None


class EntryOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    device_id: int
    unit_id: int
    seq: int
    kind: str
    occurred_at: datetime
    recorded_at: datetime
    late: bool
    recorded_by_id: int | None
    status_after: str
    officer_id: int | None
    officer_no: str | None
    officer_name: str | None
    borrower_unit_id: int | None
    borrower_name: str | None
    lend_request_id: int | None
    enforcement_matter: str | None
    case_number: str | None
    case_name: str | None
    expected_return_at: datetime | None
    task_start_at: datetime | None = None
    task_end_at: datetime | None = None
    battery_percent: int | None
    storage_free_bytes: int | None
    clock_offset_s: float | None
    fault_found: bool | None
    readings_source: str | None
    readings_station_id: int | None
    check_failures: list[str] | None
    override: bool
    override_reason: str | None
    condition: str | None
    received_by_id: int | None
    description: str | None
    refers_to_id: int | None
    corrections: dict[str, Any] | None


class EntryPage(BaseModel):
    total: int
    items: list[EntryOut]


class StationReadingIn(BaseModel):
    read_at: AwareDatetime
    clock: AwareDatetime | None = None
    battery_percent: int | None = Field(default=None, ge=0, le=100)
    storage_total_bytes: int | None = Field(default=None, ge=0)
    storage_free_bytes: int | None = Field(default=None, ge=0)
    fault_found: bool | None = None
    fault_detail: str | None = Field(default=None, max_length=500)
    family: str | None = Field(default=None, max_length=64)
    model: str | None = Field(default=None, max_length=200)


class StationReadingOut(BaseModel):
    reading_id: int
    device_status: str
    clock_offset_s: float | None
    failures: list[str]


class ClockSampleOut(BaseModel):
    at: datetime
    offset_s: float
    source: str
    station_id: int | None


class AdminOut(BaseModel):
    id: int
    username: str
    display_name: str


class UnitOut(BaseModel):
    unit_id: int
    code: str
    name: str
    admins: list[AdminOut]
    devices_in_service: int
    devices_required: int
    short: bool
    by_status: dict[str, int]


class AllocationIn(BaseModel):
    devices_required: int = Field(ge=0, le=10_000)


class MismatchOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    device_id: int
    transfer_id: str
    docked_at: datetime
    docked_officer_no: str | None
    holder_entry_id: int | None
    holder_officer_no: str | None
    reason: str
    noticed_at: datetime
