"""The cases API's request and response bodies."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field


class OfficerRef(BaseModel):
    officer_no: str | None = Field(default=None, max_length=32)
    name: str | None = Field(default=None, max_length=200)


class CaseIn(BaseModel):
    number: str = Field(min_length=1, max_length=100)
    name: str = Field(min_length=1, max_length=300)
    enforcement_matter: str | None = Field(default=None, max_length=500)
    officers: list[OfficerRef] = Field(default_factory=list, max_length=50)
    opened_on: date | None = None
    unit_id: int | None = None  # sysadmin only; default: your unit


class CasePatch(BaseModel):
    name: str | None = Field(default=None, max_length=300)
    enforcement_matter: str | None = Field(default=None, max_length=500)
    officers: list[OfficerRef] | None = Field(default=None, max_length=50)
    status: Literal["open", "closed"] | None = None
    opened_on: date | None = None
    closed_on: date | None = None


class CaseOut(BaseModel):
    id: int
    number: str
    name: str
    enforcement_matter: str | None
    unit_id: int
    officers: list[dict[str, Any]]
    status: str
    opened_on: date | None
    closed_on: date | None
    created_via: str
    created_at: datetime


class CasePage(BaseModel):
    total: int
    items: list[CaseOut]


class LinkIn(BaseModel):
    recording_id: int
    reason: str = Field(min_length=1, max_length=500)


class ReasonIn(BaseModel):
    reason: str = Field(min_length=1, max_length=500)


class LinkOut(BaseModel):
    id: int
    case_id: int
    recording_id: int
    origin: str
    reason: str
    checkout_entry_id: int | None
    linked_at: datetime
    linked_by_id: int | None
    unlinked_at: datetime | None
    unlinked_by_id: int | None
    unlink_reason: str | None


class ShareIn(BaseModel):
    user_id: int | None = None
    unit_id: int | None = None
    reason: str = Field(min_length=1, max_length=500)


class ShareOut(BaseModel):
    id: int
    case_id: int
    user_id: int | None
    unit_id: int | None
    reason: str
    shared_at: datetime
    revoked_at: datetime | None


class TaskIn(BaseModel):
    enforcement_matter: str | None = Field(default=None, max_length=500)
    case_number: str | None = Field(default=None, max_length=100)


class TaskOut(BaseModel):
    transfer_id: str
    enforcement_matter: str | None
    case_id: int | None
    case_number: str | None
    task_recorded_at: datetime | None
    missing: list[str]


class IncompleteOut(BaseModel):
    transfer_id: str
    device_serial: str
    officer_no: str | None
    officer_name: str | None
    docked_at: datetime
    enforcement_matter: str | None
    case_id: int | None
    missing: list[str]


class FoundRecording(BaseModel):
    id: int
    original_name: str
    device_serial: str
    officer_no: str | None
    officer_name: str | None
    unit_id: int
    started_at: datetime | None
    duration_s: float | None
    codec: str | None
    blake3: str
    cases: list[dict[str, Any]]
    thumbnail_url: str
    page_url: str
    important: bool = False  # marked important (重要文件标记)


class SearchOut(BaseModel):
    total: int
    more: bool = False  # true: there are more than ``total`` (a list counts no further than 10,000 past its page)
    case: CaseOut | None
    items: list[FoundRecording]


class TimelineItemOut(BaseModel):
    kind: str
    start: datetime
    end: datetime | None
    seconds: float | None
    ref: Any
    detail: dict[str, Any]


class TimelineOut(BaseModel):
    recording_id: int
    officer_no: str | None
    day_start: datetime
    day_end: datetime
    items: list[TimelineItemOut]


class DerivedOut(BaseModel):
    kind: str
    state: str
    blake3: str | None
    sha256: str | None
    size: int | None
    media_type: str | None
    source_blake3: str
    made_at: datetime
    url: str | None


class HandoverIn(BaseModel):
    """A package handed over: to whom, and which package (the digest of its manifest.json)."""

    recipient_kind: Literal["procuratorate", "court", "lawyer", "other"]
    organisation: str = Field(min_length=1, max_length=300)
    person: str = Field(min_length=1, max_length=200)
    id_number: str = Field(min_length=1, max_length=64)
    package_digest: str = Field(
        min_length=64, max_length=71, description="sha256:<hex> (sha256sum manifest.json), or blake3:<hex>"
    )
    note: str | None = Field(default=None, max_length=1000)


class IssuedOut(BaseModel):
    """A signed document as issued: its id, the digests of its two forms, where to download them."""

    id: str
    kind: str
    issued_at: datetime
    json_sha256: str
    pdf_sha256: str
    json_url: str
    pdf_url: str
    tst_url: str | None = None
    document: dict[str, Any]


class PackageLinkIn(BaseModel):
    """A link to the case's court package for someone without an account, until ``expires_at`` (at most 30 days)."""

    recipient: str = Field(min_length=1, max_length=300)
    expires_at: datetime


class PackageLinkOut(BaseModel):
    id: int
    case_id: int
    recipient: str
    created_at: datetime
    created_by_id: int
    expires_at: datetime
    revoked_at: datetime | None
    downloads: int


class PackageLinkMade(PackageLinkOut):
    token: str = Field(description="shown only now: the link is url with it")
    url: str
