"""Every figure of the dashboard is true: on SQLite and on PostgreSQL (where the flags are counted in one
pass, by grouping sets), the counts by kind, state, unit, officer and month, and the units' rates, equal
what a plain count of the same rows gives, with the rows the dashboard must leave out among them
(cleared or dismissed flags, flags outside the period, another unit's flags for a unit's administrator,
flags without an officer or a unit)."""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import create_engine, text

from evidence_server.accounts.models import Unit, User
from evidence_server.compliance.dashboard import Period, figures
from evidence_server.compliance.facts import FOOTAGE_KINDS, Kind
from evidence_server.compliance.models import ComplianceFlag
from evidence_server.config import Settings
from evidence_server.context import ServerContext
from evidence_server.dbadmin import downgrade, upgrade
from evidence_server.ledger.models import Device, LedgerEntry

TZ = ZoneInfo("Asia/Shanghai")
TODAY = date(2026, 6, 15)


def test_the_dashboard_counts_exactly_the_flags_that_count(database_url: str, tmp_path: Path) -> None:
    rnd = random.Random(18)
    ctx = ServerContext(Settings(data_dir=tmp_path / "server", database_url=database_url, environment="test"))
    period = Period.default(TZ, TODAY)
    try:
        with ctx.sessionmaker() as s:
            units = [Unit(code=f"U{i}", name=f"第{i}所") for i in range(3)]
            s.add_all(units)
            s.flush()
            legal = User(
                username="legal", display_name="法制", password_hash="x", role="legal_affairs", unit_id=units[0].id
            )
            admin = User(
                username="admin1", display_name="设备", password_hash="x", role="device_admin", unit_id=units[1].id
            )
            s.add_all([legal, admin])
            devices = [Device(serial=f"SN{i}", unit_id=units[i % 3].id) for i in range(3)]
            s.add_all(devices)
            s.flush()
            checkouts = []
            for i in range(60):
                # checkouts across the period and a few before it, some at a month's edge in local time
                at = datetime.combine(period.since, datetime.min.time(), TZ) + timedelta(days=rnd.randint(-20, 380))
                if i % 7 == 0:
                    at = datetime(2026, 3, 31, 23, 30, tzinfo=TZ)  # March locally, April 1st never
                d = devices[i % 3]
                e = LedgerEntry(
                    device_id=d.id,
                    unit_id=d.unit_id,
                    seq=i + 1,
                    kind="checkout",
                    occurred_at=at,
                    status_after="checked_out",
                )
                s.add(e)
                checkouts.append(e)
            s.flush()
            flags = []
            kinds = list(Kind)
            for i in range(400):
                at = datetime.combine(period.since, datetime.min.time(), TZ) + timedelta(
                    hours=rnd.randint(-24 * 30, 24 * 400)
                )
                if i % 50 == 0:
                    at = datetime(2026, 4, 30, 23, 59, tzinfo=TZ)
                f = ComplianceFlag(
                    key=f"k{i}",
                    kind=rnd.choice(kinds).value,
                    at=at.astimezone(UTC),
                    unit_id=rnd.choice([None, *[u.id for u in units]]),
                    officer_no=rnd.choice([None, "102345", "102346", "200001", "200002"]),
                    checkout_entry_id=rnd.choice(checkouts).id if rnd.random() < 0.7 else None,
                    evidence={"n": i},
                    evidence_digest="0" * 64,
                    state=rnd.choice(["open", "open", "confirmed", "dismissed", "explained"]),
                    cleared_at=datetime(2026, 5, 1, tzinfo=UTC) if rnd.random() < 0.15 else None,
                )
                s.add(f)
                flags.append(f)
            s.commit()

            for user, unit_id in ((legal, None), (legal, units[2].id), (admin, None)):
                got = figures(s, user, period, unit_id)
                scope = unit_id if unit_id is not None else (None if user is legal else user.unit_id)

                def month(t: datetime) -> str:
                    return t.astimezone(TZ).strftime("%Y-%m")

                counted = [
                    f
                    for f in flags
                    if f.cleared_at is None
                    and f.state != "dismissed"
                    and period.start <= f.at.astimezone(UTC) < period.end
                    and (scope is None or f.unit_id == scope)
                ]
                assert counted, "the data must hold flags that count"
                assert got.total == len(counted)
                assert got.by_kind == dict(Counter(f.kind for f in counted))
                assert list(got.by_kind.values()) == sorted(got.by_kind.values(), reverse=True)
                assert got.by_state == dict(Counter(f.state for f in counted))
                assert {u: n for u, _, n in got.by_unit} == dict(Counter(f.unit_id for f in counted))
                officers = Counter(f.officer_no for f in counted if f.officer_no is not None)
                assert dict(got.by_officer) == dict(officers)
                assert got.by_month == {m: sum(1 for f in counted if month(f.at) == m) for m in got.by_month}
                assert sum(got.by_month.values()) == len(counted)
                # the units' rates: checkouts made in the period, and those with footage flags that count
                in_period = [
                    e
                    for e in checkouts
                    if period.start <= e.occurred_at.astimezone(UTC) < period.end
                    and (scope is None or e.unit_id == scope)
                ]
                for rate in got.rates:
                    mine = [e for e in in_period if e.unit_id == rate.unit_id]
                    assert rate.checkouts == len(mine)
                    assert rate.flagged == sum(
                        1
                        for e in mine
                        if any(
                            f.checkout_entry_id == e.id
                            and f.kind in FOOTAGE_KINDS
                            and f.cleared_at is None
                            and f.state != "dismissed"
                            for f in flags
                        )
                    )
    finally:
        ctx.close()


def test_the_checkouts_index_holds_what_the_rates_read_and_its_migration_goes_both_ways(database_url: str) -> None:
    """PostgreSQL: the rates' two reads of a year of checkouts (all of them, and those with footage flags,
    joined to the flags by id) find unit and id in the index itself (migration 0025); the migration
    goes down and up again."""
    if not database_url.startswith("postgresql"):
        pytest.skip("INCLUDE columns are PostgreSQL's")
    query = text("SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_ledger_entries_kind_occurred'")
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            assert "(kind, occurred_at) INCLUDE (unit_id, id)" in conn.scalar(query)
        downgrade(database_url, "0024_name_search_index")
        with engine.connect() as conn:
            assert "(kind, occurred_at) INCLUDE (unit_id)" in conn.scalar(query)
        upgrade(database_url)
        with engine.connect() as conn:
            assert "(kind, occurred_at) INCLUDE (unit_id, id)" in conn.scalar(query)
            assert (
                conn.scalar(text("SELECT count(*) FROM pg_indexes WHERE tablename = 'ledger_entries'"))
                == len(LedgerEntry.__table__.indexes) + 2
            )  # and the primary key and the unique (device, seq): nothing left over
    finally:
        engine.dispose()
