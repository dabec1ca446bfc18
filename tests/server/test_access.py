"""Deny by default: every route names the roles it admits, and unit scoping holds."""

from __future__ import annotations

from evidence_server.app import create_app
from evidence_server.config import Settings
from evidence_server.security import route_table
from tests.server.test_station_flow import FILES, Station
from tests.support.live import LiveServer


def test_every_route_declares_its_roles(tmp_path) -> None:
    app = create_app(Settings(data_dir=tmp_path))
    routes = route_table(app)
    assert len(routes) > 15
    undeclared = [f"{methods} {path}" for methods, path, roles in routes if not roles]
    assert undeclared == [], f"routes without a role declaration: {undeclared}"


def test_public_routes_are_only_the_expected_few(tmp_path) -> None:
    app = create_app(Settings(data_dir=tmp_path), with_web=False)
    public = {path for _, path, roles in route_table(app) if "public" in roles}
    assert public == {
        "/api/v1/auth/login",
        "/api/v1/stations/enrol",
        "/api/v1/server-key",
        "/api/v1/uploads",
        "/auth/v1.0",  # the push-ingest (Swift) auth endpoint: its credentials are in its own headers
        "/healthz",
        "/readyz",
        "/api/v1/package-links/{token}/package",  # a court package shared by a link: the token is the secret
    }


def test_unauthenticated_api_calls_are_refused(live_server: LiveServer) -> None:
    for path in ("/api/v1/recordings", "/api/v1/recordings/1", "/api/v1/stations", "/api/v1/auth/me"):
        assert live_server.get(path, token="cus_u_forged").status_code == 401


def test_officers_see_their_own_recordings_and_other_units_see_nothing(live_server: LiveServer) -> None:
    st = Station(live_server)
    st.open(FILES, officer="102345")
    for path, data in FILES.items():
        st.upload(path, data)
    import httpx

    other_unit = httpx.post(live_server.url + "/api/v1/users", headers=live_server.admin_headers, json={})
    assert other_unit.status_code == 422
    own = live_server.create_user("officer1", "officer", officer_no="102345")
    other = live_server.create_user("officer2", "officer", officer_no="999999")
    admin_u1 = live_server.create_user("devadmin1", "device_admin")
    assert live_server.get("/api/v1/recordings", token=own).json()["total"] == 2
    assert live_server.get("/api/v1/recordings", token=other).json()["total"] == 0
    assert live_server.get("/api/v1/recordings", token=admin_u1).json()["total"] == 2
    rec_id = live_server.get("/api/v1/recordings", token=own).json()["items"][0]["id"]
    assert live_server.get(f"/api/v1/recordings/{rec_id}/content", token=other).status_code == 404
    # an officer cannot create stations
    r = httpx.post(
        live_server.url + "/api/v1/stations",
        json={"name": "x", "unit_id": 1},
        headers={"Authorization": f"Bearer {own}"},
    )
    assert r.status_code == 403
