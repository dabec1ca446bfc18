"""The compliance API's request and response bodies."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class FlagOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    key: str
    kind: str
    at: datetime
    unit_id: int | None
    device_serial: str | None
    officer_no: str | None
    user_id: int | None
    checkout_entry_id: int | None
    state: str
    assignee_id: int | None
    reviewed_by_id: int | None
    reviewed_at: datetime | None
    decision_reason: str | None
    first_seen_at: datetime
    last_seen_at: datetime
    cleared_at: datetime | None
    evidence: dict[str, Any]


class FlagEventOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    at: datetime
    action: str
    actor_id: int | None
    actor_role: str | None
    body: str | None
    details: dict[str, Any] | None


class FlagDetail(FlagOut):
    events: list[FlagEventOut]


class FlagPage(BaseModel):
    total: int
    items: list[FlagOut]


class ReviewIn(BaseModel):
    state: Literal["open", "under_review", "confirmed", "dismissed"]
    reason: str | None = Field(default=None, max_length=4000)


class AssignIn(BaseModel):
    assignee_id: int | None


class TextIn(BaseModel):
    body: str = Field(min_length=1, max_length=4000)


class ScanIn(BaseModel):
    scope: Literal["full", "devices", "access"] = "full"
    serials: list[str] = Field(default_factory=list, max_length=10000)
    user_ids: list[int] = Field(default_factory=list, max_length=10000)


class ScanOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    scope: str
    started_at: datetime
    finished_at: datetime | None
    as_of: datetime
    counts: dict[str, Any] | None


class UnitRateOut(BaseModel):
    unit_id: int
    unit_name: str
    checkouts: int
    flagged: int
    rate: float | None


class DashboardOut(BaseModel):
    since: date
    until: date
    total: int
    by_kind: dict[str, int]
    by_state: dict[str, int]
    by_unit: list[dict[str, Any]]
    by_officer: list[dict[str, Any]]
    by_month: dict[str, int]
    rates: list[UnitRateOut]
    rate_by_month: dict[str, float | None]
