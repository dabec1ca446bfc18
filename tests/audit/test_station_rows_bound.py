"""Stations bound to the log. A station's unit decides whose recorders it takes in, its revocation shuts out a
stolen or retired workstation, and its token (and, after a rotation, the one still in grace) is what opens it:
an insider who moves a station to another unit, revives a revoked one, or puts a token of their own on it in
the database is named by `custodia audit verify`; so is a station made up in the database. The token is never
logged, nor its stored hash: a digest of that hash is. Stations made before their creation was recorded are
adopted once, as users are (``binding.adopt``). On SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import text

from evidence_server.binding.tasks import check_rows_task
from evidence_server.stations.models import STATION_EVIDENCE, Station, station_evidence
from tests.audit.edits import each_named_once, edit
from tests.audit.test_rows_bound import audit_verify
from tests.audit.test_transfer_rows_bound import findings
from tests.cases.conftest import World, make_world


@dataclass
class Site:
    world: World
    ids: dict[str, int]  # seeded (adopted), shared (in U2, enrolled, its token rotated), retired (revoked)
    token: str  # the shared station's current token


def new_station(w: World, name: str, unit: str) -> tuple[int, str]:
    r = w.post("admin", "/api/v1/stations", {"name": name, "unit_id": w.units[unit]})
    assert r.status_code == 201, r.text
    code = r.json()["enrolment_code"]
    enrolled = w.client.post("/api/v1/stations/enrol", json={"code": code, "hostname": f"{name}-pc"})
    assert enrolled.status_code == 201, enrolled.text
    return int(r.json()["station_id"]), str(enrolled.json()["token"])


def as_station(w: World, token: str, path: str, body: object = None) -> int:
    r = w.client.post(path, json=body or {}, headers={"Authorization": f"Bearer {token}"})
    assert r.status_code < 300, r.text
    return r.status_code


@pytest.fixture
def site(tmp_path: Path, database_url: str) -> Iterator[Site]:
    for w in make_world(tmp_path, database_url):
        check_rows_task(w.ctx)  # the seeded station adopted, as an upgraded site's first station is
        shared, token = new_station(w, "shared-point", "U2")
        rotated = w.client.post("/api/v1/stations/me/token", headers={"Authorization": f"Bearer {token}"})
        assert rotated.status_code == 201, rotated.text
        token = rotated.json()["token"]
        retired, _ = new_station(w, "retired-pc", "U1")
        r = w.post("admin", f"/api/v1/stations/{retired}/revoke")
        assert r.status_code == 204, r.text
        yield Site(w, {"seeded": w.station_id, "shared": shared, "retired": retired}, token)


def test_stations_kept_through_the_api_agree_with_the_log(site: Site) -> None:
    w = site.world
    out = audit_verify(w)
    assert out.exit_code == 0, out.output
    assert "3 stations" in out.output, out.output
    # the old token's grace ends when the new one is first used: a change with no entry, and no finding
    with w.session() as s:
        assert s.get_one(Station, site.ids["shared"]).previous_token_hash is not None
    as_station(w, site.token, "/api/v1/stations/me/heartbeat", {"agent_version": "1"})
    with w.session() as s:
        station = s.get_one(Station, site.ids["shared"])
        assert station.previous_token_hash is None
        assert set(station_evidence(station)) == set(STATION_EVIDENCE)
    assert findings(w) == []


EDITS = [
    # moved to another unit: it takes in that unit's recorders, and no longer its own
    ("UPDATE stations SET unit_id = :u1 WHERE id = :shared", "stations {shared}: unit_id is {u1} in the row"),
    ("UPDATE stations SET unit_id = :u2 WHERE id = :seeded", "stations {seeded}: unit_id is {u2} in the row"),
    # a revoked workstation working again
    (
        "UPDATE stations SET revoked_at = NULL WHERE id = :retired",
        "stations {retired}: revoked is False in the row",
    ),
    # a token of the insider's own on it, as its current one or as one in grace
    ("UPDATE stations SET token_hash = :mine WHERE id = :shared", "stations {shared}: token is"),
    ("UPDATE stations SET token_hash = :mine WHERE id = :seeded", "stations {seeded}: token is"),
    ("UPDATE stations SET previous_token_hash = :mine WHERE id = :shared", "stations {shared}: previous_token is"),
    ("UPDATE stations SET previous_token_hash = :mine WHERE id = :retired", "stations {retired}: previous_token"),
    ("UPDATE stations SET name = 'x' WHERE id = :shared", "stations {shared}: name is 'x' in the row"),
]


def test_an_insiders_edits_of_stations_are_each_named(site: Site) -> None:
    """Every edit of EDITS, all on one site (a token of the insider's own differs for each): each named once."""
    w = site.world
    ids: dict[str, object] = {**site.ids, "u1": w.units["U1"], "u2": w.units["U2"]}
    each_named_once(w, EDITS, ids)


def test_a_station_made_up_in_the_database_is_named(site: Site) -> None:
    w = site.world
    edit(
        w,
        "INSERT INTO stations (name, unit_id, token_hash, created_at) VALUES ('ghost', :u2, :mine, CURRENT_TIMESTAMP)",
        u2=w.units["U2"],
        mine="e" * 64,
    )
    with w.session() as s:
        ghost = s.scalar(text("SELECT id FROM stations WHERE name = 'ghost'"))
    assert findings(w) == [
        f"stations {ghost}: not in the log (no audit entry records it): inserted behind the log's back"
    ]
