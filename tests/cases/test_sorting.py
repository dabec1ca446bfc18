"""Every order a list offers (``cases.search.SORTS``, both directions) is the order its reader asked for,
on SQLite and on PostgreSQL: ties broken by id in the same direction, and NULLs last either way in the
columns that may be NULL. The orders were given indexes (migration 0026) and the NOT NULL columns lost
their NULLS clause so that an index serves both directions: these tests hold the order to what it was."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, text

from evidence_server.accounts.models import User
from evidence_server.cases import search
from evidence_server.recordings.models import Recording
from tests.cases.conftest import World

T0 = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)


def _seed(world: World) -> None:
    """Recordings whose columns tie, differ and are missing, in an order unlike any sort's."""
    rows: list[dict[str, Any]] = [
        dict(serial="DSJ-B002", officer=("102345", "张三"), seconds=600.0, start=T0 + timedelta(hours=3), size=300),
        dict(serial="DSJ-A001", officer=None, seconds=None, start=None, size=100),
        dict(serial="DSJ-C003", officer=("100001", "李四"), seconds=300.0, start=T0 + timedelta(hours=1), size=300),
        dict(serial="DSJ-A001", officer=("102345", "张三"), seconds=None, start=T0 + timedelta(hours=2), size=50),
        dict(serial="DSJ-B002", officer=None, seconds=600.0, start=None, size=700),
        dict(serial="DSJ-C003", officer=("100001", "李四"), seconds=120.0, start=T0 + timedelta(hours=1), size=100),
    ]
    for i, r in enumerate(rows):
        world.recording(
            bytes([i]) * r["size"],
            serial=r["serial"],
            name=f"VID_{(7 * i) % 5:04d}.MP4",  # names that tie too; plain ASCII: every collation agrees
            officer=r["officer"],
            started_at=r["start"] or T0,
            seconds=r["seconds"] or 1.0,
            duration_s=r["seconds"],
            name_started_at=r["start"],
            container_started_at=None,
            verified_at=T0 + timedelta(minutes=(5 * i) % 3),
        )


def _value(rec: Recording, name: str) -> Any:
    if name == "started":
        return rec.name_started_at or rec.container_started_at
    return getattr(rec, search.SORTS[name].key)


def _expected(recs: list[Recording], name: str, descending: bool) -> list[int]:
    present = [r for r in recs if _value(r, name) is not None]
    missing = [r for r in recs if _value(r, name) is None]
    present.sort(key=lambda r: (_value(r, name), r.id), reverse=descending)
    missing.sort(key=lambda r: r.id, reverse=descending)
    return [r.id for r in present + missing]  # NULLs last, in both directions


@pytest.mark.parametrize("descending", [False, True])
@pytest.mark.parametrize("name", sorted(search.SORTS))
def test_every_sort_orders_as_asked_with_ties_by_id_and_nulls_last(
    world_any_db: World, name: str, descending: bool
) -> None:
    world = world_any_db
    _seed(world)
    with world.session() as s:
        user = s.get_one(User, world.users["handler"])
        recs = list(s.scalars(select(Recording)))
        found = search.search(s, user, search.Filters(), "", limit=50, sort=("-" if descending else "") + name)
        got = [r.id for r in found.recordings]
    assert got == _expected(recs, name, descending)
    if name in search.NULLABLE_SORTS:
        assert any(_value(r, name) is None for r in recs)  # the NULLs were there to be put last


def test_only_the_columns_that_may_be_null_sort_with_a_nulls_clause() -> None:
    """An index read backwards serves a NOT NULL column's descending order only without NULLS LAST; a
    nullable column needs the clause, or its NULLs would come first in one of the directions."""
    for name, column in search.SORTS.items():
        nullable = getattr(getattr(column, "expression", column), "nullable", True)
        assert (name in search.NULLABLE_SORTS) == nullable, name


def test_each_sort_has_its_index_on_postgresql(world_any_db: World) -> None:
    world = world_any_db
    if not world.settings.database_url.startswith("postgresql"):
        pytest.skip("the sort indexes are PostgreSQL's (migrations 0026, 0028)")
    with world.session() as s:
        defs = " | ".join(s.scalars(text("SELECT indexdef FROM pg_indexes WHERE tablename = 'recordings'")))
    for wanted in (
        "(size, id)",
        "(original_name, id)",
        "(verified_at, id)",
        "(duration_s, id)",
        "(duration_s DESC NULLS LAST, id DESC)",
        "(officer_no DESC NULLS LAST, id DESC)",
        "(officer_no, id)",
        "(COALESCE(name_started_at, container_started_at), id)",
        "(COALESCE(name_started_at, container_started_at) DESC NULLS LAST, id DESC)",
        "(device_serial)",
        "(officer_no)",
    ):
        assert wanted in defs, wanted


def test_no_order_lets_in_another_units_recording(world_any_db: World) -> None:
    """Each order reads its own index (a different plan each time); the visibility must hold under every one.
    Another unit's recording is made to sort first in most orders: largest, longest, earliest, first by
    name and by device, its officer unknown."""
    world = world_any_db
    _seed(world)
    foreign = world.recording(
        b"\xff" * 9000,
        serial="DSJ-0000",
        name="AAAA_0000.MP4",
        officer=None,
        unit="U2",
        started_at=T0 - timedelta(days=30),
        seconds=7200.0,
        duration_s=7200.0,
        verified_at=T0 - timedelta(days=30),
    )
    with world.session() as s:
        user = s.get_one(User, world.users["handler"])
        own = set(s.scalars(select(Recording.id).where(Recording.unit_id == world.units["U1"])))
        for name in search.SORTS:
            for sort in (name, "-" + name):
                found = search.search(s, user, search.Filters(), "", limit=50, sort=sort)
                shown = {r.id for r in found.recordings}
                assert foreign not in shown and shown == own and found.total == len(own), sort
