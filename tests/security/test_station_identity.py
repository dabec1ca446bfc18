"""A station belongs to its unit and its identity is its enrolment (issue 15, item 1).

Found: ``POST /api/v1/stations`` with another unit's station name returned that station and a fresh
code; enrolling with it took the station over and the real station's token stopped working. Now names
are unique within a unit only, a new code for an existing station is an explicit, audited
re-enrolment by that unit's administrators (or a system administrator), and the station that loses
its token is told why on its next call, in words the agent shows.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from evidence_server.accounts import service as accounts
from evidence_server.context import ServerContext
from ingest_agent.client import StationClient, StationCredentials, StationRefused, enrol
from ingest_agent.config import AgentSettings
from ingest_agent.runner import main_run
from tests.security.conftest import start_server
from tests.support.databases import SqliteTemplates
from tests.support.live import LiveServer


class Units:
    """A server with units U1 and U2, a device administrator and a case handler in each."""

    def __init__(self, server: LiveServer) -> None:
        self.server = server
        ctx = ServerContext(server.settings())
        with ctx.sessionmaker() as session:
            accounts.ensure_unit(session, "U2", "第二执法大队")
            session.commit()
        ctx.close()
        self.tokens = {
            f"{role}@u{unit}": server.create_user(f"id-{role}-u{unit}", role, unit_id=unit)
            for unit in (1, 2)
            for role in ("device_admin", "case_handler")
        }
        self.tokens["sysadmin"] = server.admin_headers["Authorization"].removeprefix("Bearer ")

    def post(self, who: str, path: str, body: dict[str, Any] | None = None) -> httpx.Response:
        return httpx.post(
            self.server.url + path, json=body or {}, headers={"Authorization": f"Bearer {self.tokens[who]}"}
        )

    def new_station(self, who: str, name: str, unit_id: int) -> tuple[int, str]:
        """Register a station and enrol it: (station id, token)."""
        r = self.post(who, "/api/v1/stations", {"name": name, "unit_id": unit_id})
        assert r.status_code == 201, r.text
        return int(r.json()["station_id"]), self.enrol(r.json()["enrolment_code"])

    def enrol(self, code: str) -> str:
        r = httpx.post(self.server.url + "/api/v1/stations/enrol", json={"code": code, "hostname": "pc"})
        assert r.status_code == 201, r.text
        return str(r.json()["token"])

    def beat(self, token: str) -> httpx.Response:
        return httpx.post(
            self.server.url + "/api/v1/stations/me/heartbeat", json={}, headers={"Authorization": f"Bearer {token}"}
        )

    def audit(self, action: str) -> list[dict[str, Any]]:
        r = httpx.get(
            self.server.url + "/api/v1/audit/entries",
            params={"action": action},
            headers={"Authorization": f"Bearer {self.tokens['sysadmin']}"},
        )
        assert r.status_code == 200, r.text
        return list(r.json()["items"])


@pytest.fixture(scope="module")
def units(tmp_path_factory: pytest.TempPathFactory, sqlite_templates: SqliteTemplates) -> Iterator[Units]:
    server = start_server(tmp_path_factory.mktemp("identity"), sqlite_templates)
    yield Units(server)
    server.stop()


def test_another_units_administrator_cannot_take_over_a_station_by_its_name(units: Units) -> None:
    station_id, token = units.new_station("device_admin@u1", "采集站-大厅", 1)
    # the same name in unit 2 is unit 2's own, new station: unit 1's keeps its token
    r = units.post("device_admin@u2", "/api/v1/stations", {"name": "采集站-大厅", "unit_id": 2})
    assert r.status_code == 201, r.text
    assert r.json()["station_id"] != station_id
    other_token = units.enrol(r.json()["enrolment_code"])
    assert units.beat(token).status_code == 204
    assert units.beat(other_token).status_code == 204
    # naming unit 1 gets the very answer a unit that does not exist gets
    into_unit1 = units.post("device_admin@u2", "/api/v1/stations", {"name": "采集站-大厅", "unit_id": 1})
    nowhere = units.post("device_admin@u2", "/api/v1/stations", {"name": "采集站-大厅", "unit_id": 999999})
    assert into_unit1.status_code == nowhere.status_code == 422
    assert into_unit1.json()["detail"]["code"] == nowhere.json()["detail"]["code"] == "unknown_unit"
    # and unit 1's station cannot be re-enrolled or revoked from unit 2: as if it did not exist
    for action, body in (("re-enrol", {"reason": "接管"}), ("revoke", None)):
        real = units.post("device_admin@u2", f"/api/v1/stations/{station_id}/{action}", body)
        ghost = units.post("device_admin@u2", f"/api/v1/stations/999999/{action}", body)
        assert (real.status_code, real.json()["detail"]["code"]) == (404, "unknown_station")
        assert real.json()["detail"]["message"].replace(str(station_id), "N") == ghost.json()["detail"][
            "message"
        ].replace("999999", "N")
    assert units.beat(token).status_code == 204


def test_a_name_in_use_is_refused_and_re_enrolment_is_its_own_audited_act(units: Units) -> None:
    station_id, token = units.new_station("device_admin@u1", "采集站-二楼", 1)
    r = units.post("device_admin@u1", "/api/v1/stations", {"name": "采集站-二楼", "unit_id": 1})
    assert (r.status_code, r.json()["detail"]["code"]) == (409, "station_exists")
    assert units.beat(token).status_code == 204  # asking did not end the station's token

    assert units.post("case_handler@u1", f"/api/v1/stations/{station_id}/re-enrol", {"reason": "x"}).status_code == 403
    for no_reason in ({}, {"reason": "   "}):  # re-enrolment says why
        assert units.post("device_admin@u1", f"/api/v1/stations/{station_id}/re-enrol", no_reason).status_code == 422
    first = units.post("device_admin@u1", f"/api/v1/stations/{station_id}/re-enrol", {"reason": "换了电脑"})
    second = units.post("sysadmin", f"/api/v1/stations/{station_id}/re-enrol", {"reason": "旧码已丢"})
    assert first.status_code == second.status_code == 201
    assert first.json()["station_id"] == second.json()["station_id"] == station_id
    assert units.beat(token).status_code == 204  # works until a code is used
    refused = httpx.post(units.server.url + "/api/v1/stations/enrol", json={"code": first.json()["enrolment_code"]})
    assert refused.status_code == 403  # a newer code voided the first
    new_token = units.enrol(second.json()["enrolment_code"])
    assert units.beat(new_token).status_code == 204

    issued = [e for e in units.audit("station.reenrolment_issued") if e["object"]["id"] == str(station_id)]
    assert [e["details"]["reason"] for e in issued] == ["换了电脑", "旧码已丢"]
    assert [e["actor"]["name"] for e in issued] == ["id-device_admin-u1", "admin"]
    done = [e for e in units.audit("station.reenrolled") if e["object"]["id"] == str(station_id)]
    assert len(done) == 1 and done[0]["details"]["previous_token_ended"] is True


def test_the_station_that_lost_its_token_is_told_why(units: Units) -> None:
    station_id, token = units.new_station("device_admin@u1", "采集站-三楼", 1)
    r = units.post("device_admin@u1", f"/api/v1/stations/{station_id}/re-enrol", {"reason": "新电脑"})
    units.enrol(r.json()["enrolment_code"])
    for answer in (
        units.beat(token),
        httpx.post(units.server.url + "/api/v1/transfers", json={}, headers={"Authorization": f"Bearer {token}"}),
    ):
        assert answer.status_code == 401
        assert answer.json()["detail"]["code"] == "station_reenrolled"
        assert "enrolled again" in answer.json()["detail"]["message"]
        assert "custodia agent enrol" in answer.json()["detail"]["message"]

    revoked_id, revoked = units.new_station("device_admin@u1", "采集站-丢失", 1)
    assert units.post("device_admin@u1", f"/api/v1/stations/{revoked_id}/revoke").status_code == 204
    assert units.beat(revoked).json()["detail"]["code"] == "station_revoked"
    assert units.beat("cus_s_" + "A" * 43).json()["detail"]["code"] == "unknown_station_token"


def test_the_agent_shows_the_reason_and_stops(units: Units, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    settings = AgentSettings(
        server_url=units.server.url, data_dir=tmp_path / "agent", dock_roots=[tmp_path / "dock"], recover_interval=0.2
    )
    settings.prepare_dirs()
    (tmp_path / "dock").mkdir()
    r = units.post("device_admin@u1", "/api/v1/stations", {"name": "采集站-窗口", "unit_id": 1})
    creds = enrol(units.server.url, r.json()["enrolment_code"], station_file=settings.station_file)
    r = units.post("device_admin@u1", f"/api/v1/stations/{r.json()['station_id']}/re-enrol", {"reason": "换机"})
    units.enrol(r.json()["enrolment_code"])  # someone else, elsewhere, used the new code

    client = StationClient(units.server.url, StationCredentials.load(settings.station_file))
    with client, pytest.raises(StationRefused) as refused:
        client.heartbeat(spool_bytes=0, free_bytes=0, station_time="2026-11-23T00:00:00Z")
    assert refused.value.code == "station_reenrolled" and "enrolled again" in str(refused.value)
    assert creds.token  # the station's own credentials file was not touched

    capsys.readouterr()
    assert main_run(settings) == 3
    shown = capsys.readouterr().err
    assert "enrolled again" in " ".join(shown.split())
