"""A station's unfinished uploads are found from an index of those alone (issue 18, migration 0031).

Each upload's creation counts the station's unfinished uploads, a new upload voids its unfinished siblings,
and the expiry sweep lists every unfinished upload. All three read every upload ever made: 148 ms per
upload created at 2M uploads. Each statement is taken as the product runs it and planned as a prepared
statement (``tests.support.plans``); the counts are checked too, on both databases.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from evidence_server.config import Settings
from evidence_server.context import ServerContext
from evidence_server.db import utcnow
from evidence_server.transfers.models import Transfer
from evidence_server.uploads.expiry import expire_uploads
from evidence_server.uploads.models import Upload
from evidence_server.uploads.service import open_uploads, supersede_siblings
from tests.cases.conftest import World, make_world
from tests.support.databases import PostgresTemplates
from tests.support.plans import generic_plan, statement_of

SIBLING = Upload(id="b" * 32, station_id=1, transfer_id="t-1", path="DCIM/1.MP4", declared_blake3="blake3:x")


def _open(ctx: ServerContext) -> None:
    with ctx.sessionmaker() as s:
        open_uploads(s, 1)


def _siblings(ctx: ServerContext) -> None:
    with ctx.sessionmaker() as s:
        supersede_siblings(s, SIBLING)


STATEMENTS: dict[str, tuple[Callable[[ServerContext], Any], str]] = {
    "a station's open uploads, at each upload's creation": (_open, "count("),
    "the unfinished siblings a new upload voids": (_siblings, "declared_blake3"),
    "the expiry sweep's unfinished uploads": (expire_uploads, "uploads.state"),
}


@pytest.fixture
def ctx(postgres_templates: PostgresTemplates, tmp_path: Path) -> Iterator[ServerContext]:
    ctx = ServerContext(Settings(data_dir=tmp_path, database_url=postgres_templates.fresh(), environment="test"))
    yield ctx
    ctx.close()


@pytest.mark.postgres
@pytest.mark.parametrize("what", STATEMENTS)
def test_unfinished_uploads_are_found_from_their_index_in_a_generic_plan(ctx: ServerContext, what: str) -> None:
    run, needle = STATEMENTS[what]
    statement, parameters = statement_of(ctx.engine, lambda: run(ctx), "uploads", needle)
    plan = generic_plan(ctx.engine, statement, parameters)
    assert "ix_uploads_receiving" in plan, plan


@pytest.fixture
def world(tmp_path: Path, database_url: str) -> Iterator[World]:
    yield from make_world(tmp_path, database_url)


def test_open_uploads_counts_the_stations_unfinished_ones_only(world: World) -> None:
    with world.session() as s:
        s.add(
            Transfer(
                id="t-1",
                station_id=world.station_id,
                unit_id=world.units["U1"],
                device_serial="D1",
                device={},
                docked_at=utcnow(),
                index=[],
            )
        )
        for i, state in enumerate(("receiving", "receiving", "verified", "rejected", "expired", "superseded")):
            s.add(
                Upload(
                    id=f"{i:032d}",
                    station_id=world.station_id,
                    transfer_id="t-1",
                    path=f"DCIM/{i}.MP4",
                    length=1,
                    declared_blake3="blake3:x",
                    declared_sha256="sha256:x",
                    meta={},
                    state=state,
                )
            )
        s.commit()
        assert open_uploads(s, world.station_id) == 2
        assert open_uploads(s, world.station_id + 1000) == 0
