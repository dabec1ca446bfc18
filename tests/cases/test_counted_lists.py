"""Lists of recordings at a province's size (issue 18): a list counts its matches no further than
``COUNT_CAP`` past the page it shows and then says "more", the newest come first (by the name's start
time, else the container's) by an index on PostgreSQL, and the case handler's "recordings without a case"
is counted by NOT EXISTS, up to a cap. None of it may count, show or leak another unit's recordings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, text

from evidence_server import db
from evidence_server.accounts.models import User
from evidence_server.home import service as home
from tests.cases.conftest import World


def _page(world: World, who: str, **params: object) -> dict:
    r = world.get(who, "/api/v1/recordings", params=params)
    assert r.status_code == 200, r.text
    return dict(r.json())


def test_a_list_counts_up_to_the_cap_past_its_page_and_only_what_its_reader_may_see(
    world_any_db: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = world_any_db
    start = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
    mine = [world.recording(f"u1-{i}".encode(), started_at=start + timedelta(minutes=i)) for i in range(9)]
    later = start + timedelta(hours=1)
    theirs = [
        world.recording(f"u2-{i}".encode(), unit="U2", serial="DSJ-B001", started_at=later + timedelta(minutes=i))
        for i in range(20)
    ]

    monkeypatch.setattr(db, "COUNT_CAP", 3)
    first = _page(world, "handler", limit=2)
    assert (first["total"], first["more"]) == (2 + 3, True)  # counted to 3 past the page, then "more"
    assert [r["id"] for r in first["items"]] == [mine[8], mine[7]]  # newest first, U1's only
    last = _page(world, "handler", limit=2, offset=8)
    assert (last["total"], last["more"], [r["id"] for r in last["items"]]) == (9, False, [mine[0]])
    whole = _page(world, "handler", limit=50)
    assert (whole["total"], whole["more"]) == (9, False)
    assert {r["unit_id"] for r in whole["items"]} == {world.units["U1"]}
    # the search API counts the same way, within what the reader may see
    found = world.get("handler", "/api/v1/search", params={"device_serial": "DSJ", "limit": 2}).json()
    assert (found["total"], found["more"]) == (5, True)

    monkeypatch.setattr(db, "COUNT_CAP", 1000)
    assert (_page(world, "handler", limit=2)["total"], _page(world, "handler", limit=2)["more"]) == (9, False)
    assert _page(world, "legal", limit=2)["total"] == 29  # legal affairs see every unit
    assert _page(world, "handler2", limit=2)["total"] == 20
    assert {r["id"] for r in _page(world, "handler2", limit=50)["items"]} == set(theirs)
    officer = _page(world, "officer2", limit=2)  # another officer's footage of the same unit
    assert (officer["total"], officer["more"], officer["items"]) == (0, False, [])


def test_the_newest_come_first_by_the_names_start_else_the_containers(world_any_db: World) -> None:
    world = world_any_db
    start = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
    named = [world.recording(f"named-{i}".encode(), started_at=start + timedelta(hours=i)) for i in range(3)]
    # a file name without a time: its container's start places it (newest of all here)
    unnamed = world.recording(
        b"unnamed", name="VID_0001.MP4", name_started_at=None, container_started_at=start + timedelta(hours=5)
    )
    # neither: last
    timeless = world.recording(b"timeless", name="VID_0002.MP4", name_started_at=None, container_started_at=None)
    ids = [r["id"] for r in _page(world, "handler", limit=50)["items"]]
    assert ids == [unnamed, named[2], named[1], named[0], timeless]
    if world.settings.database_url.startswith("postgresql"):
        with world.session() as s:
            index = s.scalar(text("SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_recordings_started'"))
        assert index is not None and "DESC NULLS LAST" in index


def test_recordings_without_a_case_are_counted_by_not_exists_up_to_a_cap(
    world_any_db: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = world_any_db
    case = world.open_case()
    linked, unlinked, never = (world.recording(f"w-{n}".encode()) for n in range(3))
    world.recording(b"w-u2", unit="U2", serial="DSJ-B001")  # another unit's, in no case
    for rec in (linked, unlinked):
        r = world.post("handler", f"/api/v1/cases/{case['id']}/links", {"recording_id": rec, "reason": "现场检查"})
        assert r.status_code == 201, r.text
    r = world.post("handler", f"/api/v1/cases/{case['id']}/links/{unlinked}/unlink", {"reason": "与本案无关"})
    assert r.status_code == 200, r.text

    def count() -> tuple[int, bool]:
        with world.session() as s:
            handler = s.scalar(select(User).where(User.username == "handler"))
            assert handler is not None
            return home.recordings_without_case(s, handler, timedelta(minutes=5))  # verified 20 min ago

    assert count() == (2, False)  # the one never linked and the one unlinked; not U2's, not the linked one
    monkeypatch.setattr(home, "WITHOUT_CASE_CAP", 1)
    assert count() == (1, True)  # shown as "1+"


def test_a_name_search_finds_parts_of_names_literally_with_or_without_its_index(world_any_db: World) -> None:
    """The file-name and officer-name filters are ``LIKE '%…%'`` (PostgreSQL answers them from trigram
    indexes, migration 0024): what is typed is matched literally, wildcards and all, in any script."""
    from evidence_server.cases import search

    world = world_any_db
    names = ["a%b.MP4", "a_b.MP4", "axb.MP4", "现场录像一.MP4", "AXB_upper.MP4"]
    ids = {n: world.recording(n.encode(), name=n) for n in names}
    officer = world.recording(b"by-name", name="other.MP4", officer=("109999", "王小明"))
    with world.session() as s:
        handler = s.scalar(select(User).where(User.username == "handler"))
        assert handler is not None

        def found(**f: str) -> set[int]:
            return {r.id for r in search.search(s, handler, search.Filters(**f), "", limit=50).recordings}

        assert found(file_name="%") == {ids["a%b.MP4"]}
        assert found(file_name="_") == {ids["a_b.MP4"], ids["AXB_upper.MP4"]}
        assert found(file_name="axb") == {ids["axb.MP4"], ids["AXB_upper.MP4"]}  # case folded
        assert found(file_name="录像") == {ids["现场录像一.MP4"]}
        assert found(officer="小明") == {officer}
        assert found(officer="109999") == {officer}
    if world.settings.database_url.startswith("postgresql"):
        with world.session() as s:
            made = set(s.scalars(text("SELECT indexname FROM pg_indexes WHERE indexname LIKE 'ix_recordings_%_trgm'")))
        assert made == {"ix_recordings_name_trgm", "ix_recordings_officer_name_trgm"}
