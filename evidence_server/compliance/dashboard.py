"""The figures: flags by kind, unit, officer and month, the trend, and each unit's compliance rate
(the share of its checkouts whose footage is complete, on time and untouched). Aggregates in SQL."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, DateTime, bindparam, func, select, tuple_
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from evidence_server.accounts.models import Unit, User
from evidence_server.compliance.facts import FOOTAGE_KINDS
from evidence_server.compliance.models import ComplianceFlag
from evidence_server.compliance.service import visibility
from evidence_server.ledger.models import LedgerEntry
from evidence_server.ledger.rules import HAND_OUT

#: A month as the API and pages take it: YYYY-MM with a year from 1000 (Python's dates have no year 0).
MONTH_PATTERN = r"^[1-9]\d{3}-(0[1-9]|1[0-2])$"


@dataclass(frozen=True)
class Period:
    """Local dates, both included, in the site's time zone."""

    since: date
    until: date
    tz: ZoneInfo

    @property
    def start(self) -> datetime:
        return datetime.combine(self.since, time(), self.tz)

    @property
    def end(self) -> datetime:
        return datetime.combine(self.until + timedelta(days=1), time(), self.tz)

    @classmethod
    def default(cls, tz: ZoneInfo, today: date, since: date | None = None, until: date | None = None) -> Period:
        """Default: the last twelve months up to today."""
        until = until or today
        since = since or (until.replace(day=1) - timedelta(days=335)).replace(day=1)
        return cls(since, until, tz)


def active() -> list[ColumnElement[bool]]:
    """Flags that count: still found by the rules and not dismissed by the review."""
    return [ComplianceFlag.cleared_at.is_(None), ComplianceFlag.state != "dismissed"]


def month_of(session: Session, column: Any, tz: ZoneInfo) -> Any:
    """``YYYY-MM`` of a UTC timestamp column in the site's zone, in SQL."""
    if session.get_bind().dialect.name == "postgresql":
        return func.to_char(func.timezone(tz.key, column), "YYYY-MM")
    offset = datetime.now(tz).utcoffset() or timedelta(0)
    return func.strftime("%Y-%m", column, f"{int(offset.total_seconds() // 60):+d} minutes")


def months(period: Period) -> list[str]:
    out, d = [], period.since.replace(day=1)
    while d <= period.until:
        out.append(f"{d:%Y-%m}")
        d = (d + timedelta(days=32)).replace(day=1)
    return out


def month_in_period(session: Session, column: Any, period: Period) -> tuple[Any, Callable[[Any], str]]:
    """An expression to group a UTC timestamp column of rows inside ``period`` by local month, and
    how to turn its values into ``YYYY-MM``. On PostgreSQL the bucket is found by a binary search over
    the months' first instants (``width_bucket``): formatting each row's local time as text costs
    more than reading the row (a year of checkouts is 100,000 of them)."""
    if session.get_bind().dialect.name != "postgresql":
        return month_of(session, column, period.tz), str
    names = months(period)
    starts = [datetime.combine(date.fromisoformat(f"{m}-01"), time(), period.tz) for m in names]
    bucket = func.width_bucket(column, bindparam("month_starts", starts, type_=ARRAY(DateTime(timezone=True))))
    return bucket, lambda b: names[b - 1]


@dataclass
class UnitRate:
    unit_id: int
    unit_name: str
    checkouts: int
    flagged: int

    @property
    def rate(self) -> float | None:
        return None if self.checkouts == 0 else (self.checkouts - self.flagged) / self.checkouts


@dataclass
class Figures:
    period: Period
    total: int
    by_kind: dict[str, int]
    by_state: dict[str, int]
    by_unit: list[tuple[int | None, str, int]]
    by_officer: list[tuple[str, int]]
    by_month: dict[str, int]
    rates: list[UnitRate]
    rate_by_month: dict[str, float | None] = field(default_factory=dict)


def _scoped(user: User, period: Period, unit_id: int | None) -> list[Any]:
    where = [*visibility(user), *active(), ComplianceFlag.at >= period.start, ComplianceFlag.at < period.end]
    if unit_id is not None:
        where.append(ComplianceFlag.unit_id == unit_id)
    return where


def _checkout_counts(
    session: Session, period: Period, unit_ids: list[int] | None
) -> tuple[dict[tuple[int, str], int], dict[tuple[int, str], int]]:
    """Checkouts made in the period and those with footage flags, by (unit, local month): two queries
    serve both the units' rates and the monthly trend."""
    month, name = month_in_period(session, LedgerEntry.occurred_at, period)
    in_period = [
        LedgerEntry.kind.in_([k.value for k in HAND_OUT]),
        LedgerEntry.occurred_at >= period.start,
        LedgerEntry.occurred_at < period.end,
    ]
    if unit_ids is not None:
        in_period.append(LedgerEntry.unit_id.in_(unit_ids))
    totals = {
        (u, name(m)): n
        for u, m, n in session.execute(
            select(LedgerEntry.unit_id, month, func.count()).where(*in_period).group_by(LedgerEntry.unit_id, month)
        )
    }
    flagged_ids = select(ComplianceFlag.checkout_entry_id).where(
        *active(), ComplianceFlag.kind.in_([k.value for k in FOOTAGE_KINDS])
    )
    flagged = {
        (u, name(m)): n
        for u, m, n in session.execute(
            # a semi-join: each checkout once, however many flags it has (a hash of the flagged ids, not a
            # join and a DISTINCT over every flag: a checkout's late files are flagged one by one)
            select(LedgerEntry.unit_id, month, func.count())
            .where(*in_period, LedgerEntry.id.in_(flagged_ids))
            .group_by(LedgerEntry.unit_id, month)
        )
    }
    return totals, flagged


def unit_rates(
    session: Session,
    period: Period,
    unit_ids: list[int] | None,
    counts: tuple[dict[tuple[int, str], int], dict[tuple[int, str], int]] | None = None,
) -> list[UnitRate]:
    """Checkouts made in the period, per unit, and how many of them have footage flags."""
    totals, flagged = counts or _checkout_counts(session, period, unit_ids)
    q = select(Unit.id, Unit.name).order_by(Unit.code)
    if unit_ids is not None:
        q = q.where(Unit.id.in_(unit_ids))
    return [
        UnitRate(
            uid,
            name,
            sum(n for (u, _), n in totals.items() if u == uid),
            sum(n for (u, _), n in flagged.items() if u == uid),
        )
        for uid, name in session.execute(q)
    ]


def rate_by_month(
    period: Period, counts: tuple[dict[tuple[int, str], int], dict[tuple[int, str], int]]
) -> dict[str, float | None]:
    totals, flagged = counts
    out: dict[str, float | None] = {}
    for m in months(period):
        total = sum(n for (_, mm), n in totals.items() if mm == m)
        bad = sum(n for (_, mm), n in flagged.items() if mm == m)
        out[m] = (total - bad) / total if total else None
    return out


@dataclass
class FlagCounts:
    by_kind: dict[str, int]
    by_state: dict[str, int]
    by_unit: dict[int | None, int]
    by_officer: dict[str, int]
    by_month: dict[str, int]


def _flag_counts(session: Session, where: list[Any], period: Period) -> FlagCounts:
    """The flags counted five ways. PostgreSQL reads them once (``GROUPING SETS``): at a province's size
    (a year of flags is 100,000 and more) each pass over them costs more than the grouping. Flags
    without an officer are not counted as an officer's."""
    month, name = month_in_period(session, ComplianceFlag.at, period)
    out = FlagCounts({}, {}, {}, {}, {})
    groups: list[tuple[Any, dict[Any, int]]] = [
        (ComplianceFlag.kind, out.by_kind),
        (ComplianceFlag.state, out.by_state),
        (ComplianceFlag.unit_id, out.by_unit),
        (ComplianceFlag.officer_no, out.by_officer),
        (month, out.by_month),
    ]
    if session.get_bind().dialect.name == "postgresql":
        columns = [c for c, _ in groups]
        rows = session.execute(
            select(*columns, func.grouping(*columns), func.count())
            .where(*where)
            .group_by(func.grouping_sets(*[tuple_(c) for c in columns]))
        )
        # GROUPING(...) has a bit set for each column not grouped on: the one clear bit names the set
        counted = [
            (i, row[i], row[-1])
            for row in rows
            for i in range(len(columns))
            if not row[-2] >> (len(columns) - 1 - i) & 1
        ]
    else:
        counted = [
            (i, value, n)
            for i, (column, _) in enumerate(groups)
            for value, n in session.execute(select(column, func.count()).where(*where).group_by(column))
        ]
    for i, value, n in counted:
        column, into = groups[i]
        if value is None and column is ComplianceFlag.officer_no:
            continue
        into[name(value) if column is month else value] = int(n)
    return out


def _most_first(kv: tuple[Any, int]) -> tuple[int, str]:
    """Counts the largest first; ties in a stable order."""
    return -kv[1], str(kv[0])


def figures(session: Session, user: User, period: Period, unit_id: int | None = None) -> Figures:
    where = _scoped(user, period, unit_id)
    counted = _flag_counts(session, where, period)
    by_kind = dict(sorted(counted.by_kind.items(), key=_most_first))
    by_state = counted.by_state
    names = dict(session.execute(select(Unit.id, Unit.name)).all())
    by_unit = [(u, names.get(u, "—") if u else "—", n) for u, n in sorted(counted.by_unit.items(), key=_most_first)]
    by_officer = [(o, n) for o, n in sorted(counted.by_officer.items(), key=_most_first)[:20]]
    by_month = {m: int(counted.by_month.get(m, 0)) for m in months(period)}
    if unit_id is not None:
        units: list[int] | None = [unit_id]
    else:
        units = None if user.sees_all_units else [user.unit_id]
    counts = _checkout_counts(session, period, units)
    return Figures(
        period,
        sum(by_kind.values()),
        by_kind,
        by_state,
        by_unit,
        by_officer,
        by_month,
        unit_rates(session, period, units, counts),
        rate_by_month(period, counts),
    )


# --- the flag list with drill-down filters ---------------------------------------------------------


@dataclass(frozen=True)
class Filters:
    kind: str | None = None
    state: str | None = None
    unit_id: int | None = None
    officer_no: str | None = None
    device_serial: str | None = None
    user_id: int | None = None
    checkout_entry_id: int | None = None
    month: str | None = None  # YYYY-MM, local (MONTH_PATTERN)
    since: date | None = None
    until: date | None = None
    include_cleared: bool = False
    assignee_id: int | None = None

    def query(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v not in (None, False, "")}


def find_flags(
    session: Session, user: User, f: Filters, tz: ZoneInfo, *, limit: int = 50, offset: int = 0
) -> tuple[list[ComplianceFlag], int]:
    where: list[Any] = list(visibility(user))
    if not f.include_cleared:
        where.append(ComplianceFlag.cleared_at.is_(None))
    for column, value in (
        (ComplianceFlag.kind, f.kind),
        (ComplianceFlag.state, f.state),
        (ComplianceFlag.unit_id, f.unit_id),
        (ComplianceFlag.officer_no, f.officer_no),
        (ComplianceFlag.device_serial, f.device_serial),
        (ComplianceFlag.user_id, f.user_id),
        (ComplianceFlag.checkout_entry_id, f.checkout_entry_id),
        (ComplianceFlag.assignee_id, f.assignee_id),
    ):
        if value not in (None, ""):
            where.append(column == value)
    if f.month:
        first = datetime.strptime(f.month + "-01", "%Y-%m-%d").date()
        nxt = (first + timedelta(days=32)).replace(day=1)
        where += [
            ComplianceFlag.at >= datetime.combine(first, time(), tz),
            ComplianceFlag.at < datetime.combine(nxt, time(), tz),
        ]
    if f.since:
        where.append(ComplianceFlag.at >= datetime.combine(f.since, time(), tz))
    if f.until:
        where.append(ComplianceFlag.at < datetime.combine(f.until + timedelta(days=1), time(), tz))
    total = session.scalar(select(func.count()).select_from(ComplianceFlag).where(*where)) or 0
    rows = list(
        session.scalars(
            select(ComplianceFlag)
            .where(*where)
            .order_by(ComplianceFlag.at.desc(), ComplianceFlag.id.desc())
            .limit(limit)
            .offset(offset)
        )
    )
    return rows, total
