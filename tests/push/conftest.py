"""A live server with two units, an officer and a recorder in U1, and a push account per unit."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.live import LiveServer

pytest.importorskip("swiftclient", reason="python-swiftclient is not installed (pip install -e '.[test]')")

from swiftclient.client import Connection  # noqa: E402

USER_UUID = "6f1c2a9e-3b1d-4c55-9a0e-1f2d3c4b5a60"
SERIAL = "AXW-0001"


@dataclass
class PushWorld:
    server: LiveServer
    tokens: dict[str, str]
    files: dict[str, dict[str, Any]]  # unit code -> connection file

    def swift(self, unit: str = "U1", retries: int = 0) -> Connection:
        conn = self.files[unit]
        return Connection(
            authurl=conn["AuthenticationTokenURI"][0],
            user=conn["BlobAPIUserName"],
            key=conn["BlobAPIKey"],
            auth_version="1",
            retries=retries,
            starting_backoff=0.2,
            max_backoff=1,
        )

    def api(self, who: str, path: str) -> httpx.Response:
        return httpx.get(self.server.url + path, headers={"Authorization": f"Bearer {self.tokens[who]}"})

    def db(self) -> Any:
        from evidence_server.context import ServerContext

        return ServerContext(self.server.settings())


def make_world(server: LiveServer) -> PushWorld:
    from evidence_server.accounts import service as accounts
    from evidence_server.context import ServerContext

    ctx = ServerContext(server.settings())
    with ctx.sessionmaker() as session:
        accounts.ensure_unit(session, "U2", "第二执法大队")
        session.commit()
    ctx.close()
    tokens = {
        "devadmin1": server.create_user("devadmin1", "device_admin", unit_id=1),
        "devadmin2": server.create_user("devadmin2", "device_admin", unit_id=2),
        "officer1": server.create_user("officer1", "officer", unit_id=1, officer_no="1001"),
        "officer2": server.create_user("officer2", "officer", unit_id=2, officer_no="2001"),
    }
    r = httpx.post(
        server.url + "/api/v1/devices",
        json={"serial": SERIAL, "model": "W110", "family": "folder"},
        headers={"Authorization": f"Bearer {tokens['devadmin1']}"},
    )
    assert r.status_code == 201, r.text
    files = {}
    for unit, who in (("U1", "devadmin1"), ("U2", "devadmin2")):
        r = httpx.post(
            server.url + "/api/v1/push/accounts",
            json={"name": f"bws-{unit.lower()}"},
            headers={"Authorization": f"Bearer {tokens[who]}"},
        )
        assert r.status_code == 201, r.text
        files[unit] = r.json()["connection_file"]
    return PushWorld(server, tokens, files)


@pytest.fixture
def push(live_server: LiveServer) -> PushWorld:
    return make_world(live_server)


def start_server(tmp_path: Path, url: str, mode: str = "thread", **env: str) -> LiveServer:
    server = LiveServer(data_dir=tmp_path / "server", database_url=url, mode=mode, env=env)
    server.data_dir.mkdir(parents=True, exist_ok=True)
    server.bootstrap()
    return server.start()


@pytest.fixture
def server_factory(tmp_path: Path, sqlite_url: str) -> Iterator[Any]:
    started: list[LiveServer] = []

    def make(mode: str = "thread", **env: str) -> LiveServer:
        server = start_server(tmp_path, sqlite_url, mode, **env)
        started.append(server)
        return server

    yield make
    for server in started:
        server.stop()


def register(world: PushWorld, conn: Connection, officer_no: str = "1001", uuid: str = USER_UUID) -> None:
    conn.put_container("Users")
    conn.put_object(
        "Users", uuid, contents=b"", headers={"X-Object-Meta-Name": "Li Wei", "X-Object-Meta-UserID": officer_no}
    )
    conn.put_container("Devices")
    conn.put_object(
        "Devices", SERIAL, contents=b"", headers={"X-Object-Meta-Name": "Body cam 1", "X-Object-Meta-Model": "W110"}
    )


def md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


TRACK = json.dumps(
    {
        "CoordinateEntries": [
            {
                "LocationWKT": "POINT(116.397128 39.916527)",
                "SecondsFromStart": 0.0,
                "Timestamp": "2026-12-04T10:15:00Z",
            },
            {
                "LocationWKT": "POINT(116.397500 39.916900)",
                "SecondsFromStart": 10.0,
                "Timestamp": "2026-12-04T10:15:10Z",
            },
            {
                "LocationWKT": "POINT(116.398100 39.917300)",
                "SecondsFromStart": 20.0,
                "Timestamp": "2026-12-04T10:15:20Z",
            },
        ]
    }
).encode()
