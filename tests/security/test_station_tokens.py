"""Station tokens: revoked at once (even mid-upload), rotated without ever locking a station out."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from ingest_agent.client import StationClient, StationCredentials
from tests.security.conftest import UnitStation, start_server
from tests.support.databases import SqliteTemplates
from tests.support.live import LiveServer

PATH = "DCIM/20261121/DSJ0001_102345_20261121090000_0001.MP4"


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory, sqlite_templates: SqliteTemplates) -> Iterator[LiveServer]:
    """One server for the module: each test works with stations of its own."""
    server = start_server(tmp_path_factory.mktemp("tokens"), sqlite_templates)
    yield server
    server.stop()


@pytest.fixture
def server_with(shared: LiveServer):  # type: ignore[no-untyped-def]
    return lambda **env: shared


def as_station(server: LiveServer, token: str) -> httpx.Client:
    return httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}", "Tus-Resumable": "1.0.0"})


def beat(server: LiveServer, token: str) -> int:
    with as_station(server, token) as http:
        return http.post("/api/v1/stations/me/heartbeat", json={}).status_code


def test_a_revoked_station_is_refused_everywhere_even_mid_upload(server_with) -> None:
    server = server_with()
    st = UnitStation(server, "lost-laptop", 1)
    data = b"evidence " * 2000
    st.open({PATH: data})
    upload = st.create_upload(PATH, data)
    assert st.patch(upload.headers["location"], 0, data[:1000]).status_code == 204

    stations = httpx.get(server.url + "/api/v1/stations", headers=server.admin_headers).json()
    station_id = next(s["id"] for s in stations if s["name"] == "lost-laptop")
    assert (
        httpx.post(server.url + f"/api/v1/stations/{station_id}/revoke", headers=server.admin_headers).status_code
        == 204
    )

    assert st.patch(upload.headers["location"], 1000, data[1000:]).status_code == 401
    assert st.create_upload(PATH, data).status_code == 401
    assert st.http.post("/api/v1/transfers/" + st.transfer_id + "/complete", json={}).status_code == 401
    assert beat(server, st.token) == 401
    assert server.get("/api/v1/recordings").json()["total"] == 0


def test_rotation_keeps_the_old_token_until_the_new_one_is_used(server_with) -> None:
    server = server_with()
    st = UnitStation(server, "rotating", 1)
    old = st.token
    with as_station(server, old) as http:
        r = http.post("/api/v1/stations/me/token")
    assert r.status_code == 201
    new = r.json()["token"]
    assert new != old and r.json()["previous_valid_until"]
    assert beat(server, old) == 204  # the station may not have saved the new one yet
    assert beat(server, new) == 204  # ... now it has: the old one is done
    assert beat(server, old) == 401


def test_a_rotation_lost_in_a_crash_does_not_lock_the_station_out(server_with) -> None:
    server = server_with()
    st = UnitStation(server, "crashy", 1)
    old = st.token
    with as_station(server, old) as http:
        lost = http.post("/api/v1/stations/me/token").json()["token"]  # the answer never reached the disk
        again = http.post("/api/v1/stations/me/token").json()["token"]  # rotate again with the old token
    assert beat(server, lost) == 401  # superseded
    assert beat(server, again) == 204
    assert beat(server, old) == 401


def test_revocation_ends_both_tokens_of_a_rotation(server_with) -> None:
    server = server_with()
    st = UnitStation(server, "rotated-then-revoked", 1)
    with as_station(server, st.token) as http:
        new = http.post("/api/v1/stations/me/token").json()["token"]
    station_id = st.enrolment["station_id"]
    httpx.post(server.url + f"/api/v1/stations/{station_id}/revoke", headers=server.admin_headers)
    assert beat(server, st.token) == 401 and beat(server, new) == 401


def test_re_enrolment_replaces_the_token(server_with) -> None:
    server = server_with()
    first = UnitStation(server, "re-enrolled", 1)
    station_id = first.enrolment["station_id"]
    r = httpx.post(
        server.url + f"/api/v1/stations/{station_id}/re-enrol", json={"reason": "新电脑"}, headers=server.admin_headers
    )
    assert r.status_code == 201, r.text
    assert beat(server, first.token) == 204  # until the new code is used
    enrolled = httpx.post(server.url + "/api/v1/stations/enrol", json={"code": r.json()["enrolment_code"]})
    assert enrolled.json()["station_id"] == station_id
    assert beat(server, first.token) == 401 and beat(server, enrolled.json()["token"]) == 204


def test_the_agent_rotates_and_saves_its_token_atomically(server_with, tmp_path) -> None:
    server = server_with()
    st = UnitStation(server, "agent-rotation", 1)
    station_file = tmp_path / "station.json"
    creds = StationCredentials(
        station_id=str(st.enrolment["station_id"]),
        station_name="agent-rotation",
        token=st.token,
        server_public_key=st.enrolment["server_public_key"],
        server_key_id=st.enrolment["server_key_id"],
        server_url=server.url,
    )
    creds.save(station_file)
    with StationClient(server.url, creds) as client:
        rotated = client.rotate_token(station_file)
        client.heartbeat(0, 0, "2026-11-21T10:00:00Z")  # uses the new token
    assert StationCredentials.load(station_file).token == rotated.token != st.token
    assert oct(station_file.stat().st_mode & 0o777) == "0o600"
    assert beat(server, rotated.token) == 204 and beat(server, st.token) == 401
