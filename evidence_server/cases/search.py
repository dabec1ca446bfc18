"""Finding footage (by case, officer, device, unit, time, enforcement matter) and an officer's day."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import Request
from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import Session

from evidence_server.accounts.models import User
from evidence_server.audit.service import record as audit
from evidence_server.cases import access, numbers, rules
from evidence_server.cases.access import recordings_visible
from evidence_server.cases.linking import checkout_windows, span_of
from evidence_server.cases.models import Case, CaseLink
from evidence_server.cases.service import find_by_number
from evidence_server.db import total_of_page
from evidence_server.ledger.models import Device, LedgerEntry
from evidence_server.ledger.rules import HAND_OUT
from evidence_server.recordings.models import Recording
from evidence_server.transfers.models import Transfer


@dataclass
class Filters:
    case_number: str | None = None
    case_match: str = "exact"  # exact | prefix
    case_name: str | None = None
    officer: str | None = None  # an officer number, or part of a name
    device_serial: str | None = None  # a serial or its beginning
    unit_id: int | None = None
    started_from: datetime | None = None
    started_to: datetime | None = None
    enforcement_matter: str | None = None
    file_name: str | None = None  # part of the file name the recorder gave it
    important: bool | None = None  # marked important (重要文件标记), or not; None: either

    def given(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v not in (None, "") and k != "case_match"}


@dataclass
class Results:
    total: int
    recordings: list[Recording]
    more: bool = False  # there are more than ``total`` (the count stopped at COUNT_CAP past the page)
    cases: dict[int, list[Case]] = field(default_factory=dict)  # recording id → its cases (visible ones)
    case: Case | None = None  # the case, for an exact case-number search


def _contains(column: Any, text: str) -> Any:
    return func.lower(column).contains(text.strip().lower(), autoescape=True)


def _linked(cases: Select[Case]) -> Select[int]:
    ids = cases.with_only_columns(Case.id)
    return select(CaseLink.recording_id).where(CaseLink.unlinked_at.is_(None), CaseLink.case_id.in_(ids))


def started(column_source: type[Recording] = Recording) -> Any:
    return func.coalesce(column_source.name_started_at, column_source.container_started_at)


def query(session: Session, user: User, f: Filters, pattern: str) -> tuple[Select[Recording], Case | None]:
    """The recordings matching every given filter, among those ``user`` may see. Raises CaseError for
    a malformed or unknown case number in an exact search."""
    case = None
    exact = bool(f.case_number and f.case_number.strip()) and f.case_match != "prefix"
    if exact:  # the case is one the user may see (find_by_number checked)
        case = find_by_number(session, user, f.case_number or "", pattern)
    # a case whose recordings are all theirs to see needs no recording filter of its own
    whole_case = case is not None and access.sees_linked_recordings(user)
    q = select(Recording) if whole_case else recordings_visible(user)
    cases = access.cases_visible(user)
    if case is not None:  # its links, by its id
        q = q.where(
            Recording.id.in_(
                select(CaseLink.recording_id).where(CaseLink.unlinked_at.is_(None), CaseLink.case_id == case.id)
            )
        )
    elif f.case_number and f.case_number.strip():  # prefix
        prefix = numbers.normalize(f.case_number)
        q = q.where(Recording.id.in_(_linked(cases.where(Case.number.startswith(prefix, autoescape=True)))))
    if f.case_name and f.case_name.strip():
        q = q.where(Recording.id.in_(_linked(cases.where(_contains(Case.name, f.case_name)))))
    if f.enforcement_matter and f.enforcement_matter.strip():
        by_transfer = select(Transfer.id).where(_contains(Transfer.enforcement_matter, f.enforcement_matter))
        q = q.where(
            or_(
                Recording.id.in_(_linked(cases.where(_contains(Case.enforcement_matter, f.enforcement_matter)))),
                Recording.transfer_id.in_(by_transfer),
            )
        )
    if f.file_name and f.file_name.strip():
        q = q.where(_contains(Recording.original_name, f.file_name))
    if f.important is not None:
        q = q.where(Recording.important.is_(f.important))
    if f.officer and f.officer.strip():
        q = q.where(or_(Recording.officer_no == f.officer.strip(), _contains(Recording.officer_name, f.officer)))
    if f.device_serial and f.device_serial.strip():
        q = q.where(Recording.device_serial.startswith(f.device_serial.strip(), autoescape=True))
    if f.unit_id is not None:
        q = q.where(Recording.unit_id == f.unit_id)
    if f.started_from is not None:
        q = q.where(started() >= f.started_from)
    if f.started_to is not None:
        q = q.where(started() <= f.started_to)
    return q, case


#: the columns a list may be sorted by (the URL's ``sort``: a name, ``-name`` for descending)
SORTS: dict[str, Any] = {
    "started": started(),
    "name": Recording.original_name,
    "device": Recording.device_serial,
    "officer": Recording.officer_no,
    "duration": Recording.duration_s,
    "size": Recording.size,
    "verified": Recording.verified_at,
}
DEFAULT_SORT = "-started"


def parse_sort(raw: str | None) -> tuple[str, bool]:
    """(column, descending) from a ``sort`` parameter; anything unknown is the default. Pure."""
    raw = (raw or "").strip()
    descending = raw.startswith("-")
    name = raw.lstrip("-")
    if name not in SORTS:
        return parse_sort(DEFAULT_SORT) if raw != DEFAULT_SORT else ("started", True)
    return name, descending


#: the sortable columns that may be NULL: their NULLs come last in either direction
NULLABLE_SORTS = frozenset({"started", "officer", "duration"})


def ordering(sort: str | None) -> tuple[Any, ...]:
    """ORDER BY for a ``sort``, the id breaking ties. A column that cannot be NULL has no NULLS clause, so
    that one index read forwards or backwards serves both directions (PostgreSQL: migration 0026)."""
    name, descending = parse_sort(sort)
    column = SORTS[name]
    key = column.desc() if descending else column.asc()
    if name in NULLABLE_SORTS:
        key = key.nulls_last()
    return key, Recording.id.desc() if descending else Recording.id.asc()


def search(
    session: Session,
    user: User,
    f: Filters,
    pattern: str,
    *,
    limit: int = 50,
    offset: int = 0,
    sort: str | None = None,
) -> Results:
    q, case = query(session, user, f, pattern)
    rows = list(session.scalars(q.order_by(*ordering(sort)).limit(limit).offset(offset)))
    total, more = total_of_page(session, q, offset, limit, len(rows))
    by_rec: dict[int, list[Case]] = {r.id: [] for r in rows}
    if rows:
        pairs = session.execute(
            select(CaseLink.recording_id, Case)
            .join(Case, Case.id == CaseLink.case_id)
            .where(
                CaseLink.unlinked_at.is_(None),
                CaseLink.recording_id.in_(by_rec),
                Case.id.in_(access.cases_visible(user).with_only_columns(Case.id)),
            )
            .order_by(Case.number)
        ).all()
        for rec_id, c in pairs:
            by_rec[rec_id].append(c)
    return Results(total, rows, cases=by_rec, case=case, more=more)


def record_search(
    session: Session, request: Request | None, filters: Filters, found: Results, via: str | None = None
) -> None:
    """Audit a search: what was asked, how many matched, which recordings were shown (and ``via``: the page)."""
    details: dict[str, object] = {
        "filters": {k: str(v) for k, v in filters.given().items()},
        "total": found.total,
        "total_is_a_floor": found.more,
        "shown": [r.id for r in found.recordings],
    }
    if via is not None:
        details["via"] = via
    audit(session, "recording.search", request=request, object_type="search", details=details)


# --- an officer's day around a recording ----------------------------------------------------------


@dataclass
class Day:
    start: datetime
    end: datetime
    officer_no: str | None
    items: list[rules.TimelineItem]
    visible: set[int]  # recordings of the day this user may open


def _offsets(session: Session, recs: list[Recording]) -> dict[str, float | None]:
    ids = {r.transfer_id for r in recs}
    rows = session.execute(select(Transfer.id, Transfer.clock_offset_s).where(Transfer.id.in_(ids)))
    return {transfer_id: offset for transfer_id, offset in rows}


def _day_of(rec: Recording, offset: float | None, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """[start, end) of the local day of the recording's corrected start (its dock, if it has none). Pure."""
    anchor = span_of(rec, offset).true_start() or rec.docked_at
    start = datetime.combine(anchor.astimezone(tz).date(), time.min, tz)
    return start, start + timedelta(days=1)


def _nearby_recordings(session: Session, rec: Recording, start: datetime, after: datetime) -> list[Recording]:
    """The recordings of the same officer (or, with no officer, the same device) from a day before to ``after``."""
    who = (Recording.officer_no == rec.officer_no) if rec.officer_no else (Recording.device_serial == rec.device_serial)
    stmt = select(Recording).where(who, started() >= start - timedelta(days=1), started() < after).limit(2000)
    return list(session.scalars(stmt))


def _officers_devices(session: Session, officer_no: str, start: datetime, end: datetime) -> set[str]:
    """The devices handed out to the officer from two days before the day to its end."""
    return set(
        session.scalars(
            select(Device.serial)
            .join(LedgerEntry, LedgerEntry.device_id == Device.id)
            .where(
                LedgerEntry.officer_no == officer_no,
                LedgerEntry.kind.in_([k.value for k in HAND_OUT]),
                LedgerEntry.occurred_at < end,
                LedgerEntry.occurred_at >= start - timedelta(days=2),
            )
        )
    )


def _docks(session: Session, serials: set[str], start: datetime, after: datetime) -> list[rules.Dock]:
    stmt = select(Transfer).where(
        Transfer.device_serial.in_(serials), Transfer.docked_at >= start, Transfer.docked_at < after
    )
    return [rules.Dock(t.id, t.device_serial, t.docked_at, t.completed_at) for t in session.scalars(stmt)]


def officer_day(session: Session, user: User, rec: Recording, settings: Any) -> Day:
    """The checkout, the recordings with their gaps, the docks and uploads of the officer's day
    (the local day of the recording's corrected start; docks and uploads up to a day later)."""
    start, end = _day_of(rec, _offsets(session, [rec]).get(rec.transfer_id), ZoneInfo(settings.default_timezone))
    after = end + timedelta(days=1)
    recs = _nearby_recordings(session, rec, start, after)
    offsets = _offsets(session, recs)
    spans = [
        s
        for s in (span_of(r, offsets.get(r.transfer_id)) for r in recs)
        if (began := s.true_start()) is not None and start <= began < end
    ]
    day_ids = {s.recording_id for s in spans}
    serials = {r.device_serial for r in recs if r.id in day_ids} | {rec.device_serial}
    if rec.officer_no:
        serials |= _officers_devices(session, rec.officer_no, start, end)
    windows = [
        w
        for w in checkout_windows(session, serials, start, end)
        if w.start < end and (not rec.officer_no or w.officer_no in (None, rec.officer_no))
    ]
    docks = _docks(session, serials, start, after)
    uploads = [rules.Upload(r.id, r.transfer_id, r.uploaded_at) for r in recs if r.id in day_ids]
    items = rules.officer_day(windows, spans, docks, uploads, min_gap=timedelta(seconds=settings.timeline_min_gap_s))
    visible = set(
        session.scalars(recordings_visible(user).where(Recording.id.in_(day_ids)).with_only_columns(Recording.id))
    )
    return Day(start, end, rec.officer_no, items, visible)
