"""What the retention API takes and gives."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

Reason = Field(min_length=1, max_length=1000)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PolicyIn(Strict):
    policy: dict[str, Any]
    reason: str = Reason


class PolicyOut(BaseModel):
    policy: dict[str, Any]
    version_id: int | None  # None: the configured default
    pending_changes: list[int]


class ProposalOut(BaseModel):
    applied: bool
    version_id: int | None = None
    change_id: int | None = None


class HoldIn(Strict):
    target: str = Field(description="case | recording | officer | device")
    value: str = Field(min_length=1, max_length=64, description="case or recording id, officer number, device serial")
    reason: str = Reason


class ReasonIn(Strict):
    reason: str = Reason


class NoteIn(Strict):
    note: str | None = Field(default=None, max_length=1000)


class HoldOut(BaseModel):
    id: int
    target: str
    value: str
    unit_id: int | None
    reason: str
    placed_at: datetime
    placed_by_id: int
    lifted_at: datetime | None
    lifted_by_id: int | None
    lift_reason: str | None


class ExtensionIn(Strict):
    until: AwareDatetime | None = None
    for_good: bool = False
    reason: str = Reason


class CaseKindIn(Strict):
    kind: str | None = Field(default=None, max_length=32)
    reason: str = Reason


class StateOut(BaseModel):
    recording_id: int
    retain_until: datetime | None
    basis: str
    case_id: int | None
    extended_until: datetime | None
    extended_for_good: bool
    lock_until: datetime | None
    storage_hold: bool
    held: bool
    computed_at: datetime
    disposed_at: datetime | None


class RecordingRetentionOut(BaseModel):
    state: StateOut | None
    due: bool
    holds: list[HoldOut]
    certificate: str | None


class ChangeOut(BaseModel):
    id: int
    subject: str
    recording_id: int | None
    case_id: int | None
    current: dict[str, Any]
    proposed: dict[str, Any]
    reason: str
    status: str
    requested_at: datetime
    requested_by_id: int | None
    decided_at: datetime | None
    decided_by_id: int | None
    decision_note: str | None
    approvals: list[int] = []


class DueOut(BaseModel):
    recording_id: int
    retain_until: datetime
    basis: str
    unit_id: int
    device_serial: str
    officer_no: str | None
    original_name: str
    requested: bool


class DisposalIn(Strict):
    recording_ids: list[int] = Field(min_length=1, max_length=1000)
    reason: str = Reason


class ApprovalOut(BaseModel):
    user_id: int
    approved_at: datetime
    note: str | None


class DisposalOut(BaseModel):
    id: int
    reason: str
    status: str
    requested_at: datetime
    requested_by_id: int
    decided_at: datetime | None
    decided_by_id: int | None
    decision_note: str | None
    recording_ids: list[int]
    approvals: list[ApprovalOut]
    #: items a run left, with why (e.g. marked important and not yet reviewed): recording id -> reason
    skipped: dict[str, str] = {}


class CertificateOut(BaseModel):
    id: int
    number: str
    recording_id: int
    request_id: int
    issued_at: datetime
    document: dict[str, Any]


class RunOut(BaseModel):
    seen: int
    created: int
    extended: int
    fixed: int
    shortened: int
    proposed: list[int]
    locked: int
    errors: list[str]
    stopped: bool
