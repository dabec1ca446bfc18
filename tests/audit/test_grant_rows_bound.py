"""The units a station serves besides its own, bound to the log's grants. A grant lets a shared station take in
another unit's recorders: a grant made up in the database, or a withdrawn one put back, would let a station
of one unit take custody of another's footage. `custodia audit verify` names either; a grant deleted behind
the log's back too. On SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from tests.audit.test_rows_bound import audit_verify
from tests.audit.test_transfer_rows_bound import findings
from tests.cases.conftest import World, make_world


@pytest.fixture
def world(tmp_path: Path, database_url: str) -> Iterator[World]:
    yield from make_world(tmp_path, database_url)


def grant(w: World) -> None:
    r = w.put("admin", f"/api/v1/stations/{w.station_id}/units/{w.units['U2']}", {})
    assert r.status_code == 200 and r.json()["serves"] == [w.units["U2"]], r.text


def withdraw(w: World) -> None:
    r = w.client.delete(f"/api/v1/stations/{w.station_id}/units/{w.units['U2']}", headers=w.headers("admin"))
    assert r.status_code == 200 and r.json()["serves"] == [], r.text


def edit(w: World, sql: str) -> None:
    with w.ctx.engine.begin() as conn:
        conn.execute(text(sql), {"s": w.station_id, "u2": w.units["U2"]})


INSERT = "INSERT INTO station_units (station_id, unit_id, granted_at) VALUES (:s, :u2, CURRENT_TIMESTAMP)"


def test_grants_and_withdrawals_through_the_api_agree_with_the_log(world: World) -> None:
    grant(world)
    withdraw(world)
    grant(world)
    out = audit_verify(world)
    assert out.exit_code == 0, out.output
    assert "1 station units" in out.output, out.output


def test_a_grant_made_up_in_the_database_is_named(world: World) -> None:
    edit(world, INSERT)
    name = f"station_units station {world.station_id}, unit {world.units['U2']}"
    assert findings(world) == [f"{name}: not in the log (no audit entry records it): inserted behind the log's back"]
    out = audit_verify(world)
    assert out.exit_code == 3 and name in out.output, out.output


def test_a_withdrawn_grant_put_back_in_the_database_is_named(world: World) -> None:
    grant(world)
    withdraw(world)
    edit(world, INSERT)
    (found,) = findings(world)
    name = f"station_units station {world.station_id}, unit {world.units['U2']}"
    assert found.startswith(f"{name}: granted is True in the row, but log entry "), found
    assert found.endswith("(station.unit_withdrawn) recorded False"), found


def test_a_grant_deleted_behind_the_log_is_named(world: World) -> None:
    grant(world)
    edit(world, "DELETE FROM station_units WHERE station_id = :s AND unit_id = :u2")
    (found,) = findings(world)
    assert "missing from the database, though log entry" in found and "(station.unit_granted)" in found, found
