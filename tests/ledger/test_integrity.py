"""The ledger holds in the database itself: append-only against raw SQL, one winner when two desks
check the same device out at the same moment, and a migration that goes down and up again."""

from __future__ import annotations

import importlib.util
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from alembic.migration import MigrationContext
from alembic.operations import Operations
from sqlalchemy import create_engine, func, inspect, select, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

from evidence_server.dbadmin import MIGRATIONS
from evidence_server.ledger import service
from evidence_server.ledger.models import Device, LedgerEntry
from evidence_server.ledger.rules import RuleError
from tests.ledger.conftest import GOOD, Api, Site

BREAKERS = [
    "UPDATE ledger_entries SET officer_no = '999999'",
    "UPDATE ledger_entries SET occurred_at = recorded_at WHERE kind = 'checkout'",
    "DELETE FROM ledger_entries WHERE kind = 'checkout'",
    "DELETE FROM ledger_entries",
]


def test_raw_sql_cannot_change_or_remove_an_entry(api: Api, site: Site) -> None:
    api.register("DSJ1000")
    assert api.checkout("DSJ1000").status_code == 201
    engine = create_engine(site.url)
    before = _rows(engine)
    for statement in BREAKERS:
        with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
            conn.execute(text(statement))
        assert _rows(engine) == before, statement
    engine.dispose()


@pytest.mark.postgres
def test_postgres_refuses_truncate_too(api: Api, site: Site) -> None:
    if not site.url.startswith("postgresql"):
        pytest.skip("TRUNCATE is PostgreSQL's")
    api.register("DSJ1001")
    engine = create_engine(site.url)
    with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
        conn.execute(text("TRUNCATE ledger_entries CASCADE"))
    assert len(_rows(engine)) == 1
    engine.dispose()


def _rows(engine: Engine) -> list[tuple[Any, ...]]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text("SELECT * FROM ledger_entries ORDER BY id"))]


def test_only_one_of_two_simultaneous_checkouts_wins(api: Api, site: Site) -> None:
    """Desks at two stations check the same device out at the same moment, each on its own connection."""
    api.register("DSJ1100")
    desks = 6
    barrier = threading.Barrier(desks)
    results: list[object] = [None] * desks
    officers = ["officer1", "officer2"] * (desks // 2)

    def desk(i: int) -> None:
        ctx = site.ctx("devadmin1")
        with site.session() as session:
            task = service.Task("同时领用测试", datetime.now(UTC) + timedelta(hours=4))
            barrier.wait(timeout=10)
            try:
                entry = service.checkout(
                    session, ctx, serial="DSJ1100", task=task, officer_id=site.users[officers[i]], readings=dict(GOOD)
                )
                session.commit()
                results[i] = entry.id
            except RuleError as exc:
                session.rollback()
                results[i] = exc.code

    threads = [threading.Thread(target=desk, args=(i,)) for i in range(desks)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    winners = [r for r in results if isinstance(r, int)]
    losers = [r for r in results if not isinstance(r, int)]
    assert len(winners) == 1, results
    assert set(losers) <= {"device_checked_out", "concurrent_change"} and len(losers) == desks - 1
    with site.session() as s:
        device = s.scalar(select(Device).where(Device.serial == "DSJ1100"))
        assert device is not None and device.status == "checked_out" and device.open_checkout_id == winners[0]
        assert s.scalar(select(func.count()).select_from(LedgerEntry).where(LedgerEntry.kind == "checkout")) == 1


VERSIONS = MIGRATIONS / "versions"
LEDGER_TABLES = {"devices", "ledger_entries", "lend_requests", "device_readings", "dock_mismatches", "unit_allocations"}


def run_migration(url: str, direction: str) -> None:
    """Run 0002_ledger's own upgrade() or downgrade() (later migrations merge this branch, so alembic
    cannot take it down alone without also running the other features' downgrades)."""
    spec = importlib.util.spec_from_file_location("migration_0002_ledger", VERSIONS / "0002_ledger.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    engine = create_engine(url)
    with engine.begin() as conn:
        context = MigrationContext.configure(conn, opts={"render_as_batch": conn.dialect.name == "sqlite"})
        with Operations.context(context):
            getattr(module, direction)()
    engine.dispose()


#: the first migration whose tables refer to the ledger's (push devices name registered devices): taken
#: down first, and up again after, as alembic would around 0002_ledger
LEDGER_DEPENDENTS = "0017_push"


def test_the_migration_goes_down_and_up_again(site: Site) -> None:
    from evidence_server import dbadmin

    engine = create_engine(site.url)
    assert set(inspect(engine).get_table_names()) >= LEDGER_TABLES
    dbadmin.downgrade(site.url, f"{LEDGER_DEPENDENTS}-1")
    run_migration(site.url, "downgrade")
    tables = set(inspect(engine).get_table_names())
    assert not LEDGER_TABLES & tables and "units" in tables
    run_migration(site.url, "upgrade")
    dbadmin.upgrade(site.url)
    assert set(inspect(engine).get_table_names()) >= LEDGER_TABLES
    with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:  # the guards came back
        conn.execute(
            text(
                "INSERT INTO devices (serial, unit_id, status, version, created_at) "
                "VALUES ('X1', 1, 'available', 1, '2026-01-01 00:00:00')"
            )
        )
        conn.execute(
            text(
                "INSERT INTO ledger_entries (device_id, unit_id, seq, kind, occurred_at, recorded_at, "
                "late, status_after, override) SELECT id, 1, 1, 'register', created_at, created_at, "
                "false, 'available', false FROM devices"
            )
        )
        conn.execute(text("DELETE FROM ledger_entries"))
    engine.dispose()


def test_two_entries_cannot_take_the_same_place_in_a_devices_ledger(api: Api, site: Site) -> None:
    """The last line of defence behind the lock: (device_id, seq) is unique."""
    api.register("DSJ1200")
    engine = create_engine(site.url)
    with pytest.raises(DBAPIError), engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO ledger_entries (device_id, unit_id, seq, kind, occurred_at, recorded_at, "
                "late, status_after, override) SELECT device_id, unit_id, seq, 'checkout', occurred_at, "
                "recorded_at, false, 'checked_out', false FROM ledger_entries"
            )
        )
    assert len(_rows(engine)) == 1
    engine.dispose()
