"""A crowd of uploads streaming at once does not take the database from everyone else.

An upload's body streams for seconds (128 MiB a PATCH from the agent). If each streaming PATCH held a
pooled connection, as many recorders docking at once as the pool has connections would leave none
for the rest: pages, scans, the receipts of other docks would wait for the pool and time out. Here the
pool has 2 connections and 4 uploads stream at once, each holding its body half-sent; a listing must
still answer at once, and every upload must then complete, verified.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import _live
from tests.server.test_station_flow import Station
from tests.support.live import LiveServer

UPLOADS = 4
SIZE = 3 * 1024 * 1024


@pytest.fixture
def small_pool_server(tmp_path: Path, database_url: str) -> Iterator[LiveServer]:
    server = _live(tmp_path, database_url, CUSTODIA_DB_POOL_SIZE="2", CUSTODIA_DB_MAX_OVERFLOW="0")
    yield server
    server.stop()


def test_uploads_streaming_at_once_leave_the_pool_to_everyone_else(small_pool_server: LiveServer) -> None:
    files = {f"DCIM/20261121/DSJ0001_102345_2026112109{n:02d}00_000{n}.MP4": bytes([n]) * SIZE for n in range(UPLOADS)}
    st = Station(small_pool_server)
    st.open(files)
    locations = {}
    for path, data in files.items():
        r = st.create_upload(path, data)
        assert r.status_code == 201, r.text
        locations[path] = r.headers["location"]

    half_sent = threading.Barrier(UPLOADS + 1, timeout=30)
    go_on = threading.Event()
    answers: dict[str, httpx.Response | BaseException] = {}

    def body(data: bytes) -> Iterator[bytes]:
        yield data[: len(data) // 2]
        time.sleep(0.3)  # the first half reaches the server, which is now streaming this upload
        half_sent.wait()
        assert go_on.wait(60)
        yield data[len(data) // 2 :]

    def send(path: str) -> None:
        try:
            answers[path] = st.http.patch(
                locations[path],
                content=body(files[path]),
                headers={
                    "Upload-Offset": "0",
                    "Content-Type": "application/offset+octet-stream",
                    "Content-Length": str(SIZE),
                },
                timeout=90,
            )
        except BaseException as exc:  # noqa: BLE001  (reported by the assertion below)
            answers[path] = exc

    threads = [threading.Thread(target=send, args=(p,)) for p in files]
    for t in threads:
        t.start()
    try:
        half_sent.wait()  # all four are mid-body
        t0 = time.monotonic()
        listing = httpx.get(
            small_pool_server.url + "/api/v1/recordings", headers=small_pool_server.admin_headers, timeout=10
        )
        waited = time.monotonic() - t0
    finally:
        go_on.set()
        for t in threads:
            t.join(90)
    assert listing.status_code == 200, listing.text
    assert waited < 10  # it did not wait for a streaming upload to free a connection (the pool waits 30 s)
    for path in files:
        r = answers[path]
        assert isinstance(r, httpx.Response), f"{path}: {r!r}"
        assert r.status_code == 204 and r.headers.get("Custodia-Verified") == "true", (path, r.status_code, r.text)
    held = small_pool_server.get("/api/v1/recordings", params={"limit": 50}).json()
    assert held["total"] == UPLOADS


def test_downloads_streaming_at_once_leave_the_pool_to_everyone_else(small_pool_server: LiveServer) -> None:
    """The same for reads: a court clerk's slow download of a long original holds no connection."""
    big = 24 * 1024 * 1024  # more than the loopback's socket buffers: the server is mid-response
    files = {
        f"DCIM/20261121/DSJ0001_102345_2026112110{n:02d}00_000{n}.MP4": bytes([n + 7]) * big for n in range(UPLOADS)
    }
    st = Station(small_pool_server)
    st.open(files)
    for path, data in files.items():
        assert st.upload(path, data).status_code == 204
    items = small_pool_server.get("/api/v1/recordings", params={"limit": 50}).json()["items"]
    client = httpx.Client(base_url=small_pool_server.url, headers=small_pool_server.admin_headers, timeout=30)
    streams = [client.stream("GET", f"/api/v1/recordings/{i['id']}/content") for i in items]
    try:
        responses = [s.__enter__() for s in streams]
        for r in responses:
            assert r.status_code == 200
            next(r.iter_bytes(64 * 1024))  # the first bytes; the rest waits in the server
        t0 = time.monotonic()
        listing = httpx.get(
            small_pool_server.url + "/api/v1/recordings", headers=small_pool_server.admin_headers, timeout=10
        )
        waited = time.monotonic() - t0
    finally:
        for s in streams:
            s.__exit__(None, None, None)
        client.close()
    assert listing.status_code == 200 and waited < 10


def test_the_same_bytes_finalized_at_once_by_two_stations_are_one_recording_and_no_error(
    live_server_any_db: LiveServer,
) -> None:
    """Two recorders' empty segments (or any equal bytes) finishing at the same moment: both uploads are
    verified, with no 500 for the station to retry."""
    for round_ in range(4):
        data = b"" if round_ == 0 else bytes([round_]) * (2 * 1024 * 1024)
        stations = [Station(live_server_any_db, f"station-{round_}-{n}") for n in range(2)]
        locations = []
        for n, st in enumerate(stations):
            path = f"DCIM/20261121/DSJ00{round_}{n}_102345_20261121090000_0001.MP4"
            st.open({path: data}, serial=f"DSJ00{round_}{n}")
            r = st.create_upload(path, data)
            assert r.status_code == 201, r.text
            locations.append(r.headers["location"])
            if data:
                assert st.patch(locations[-1], 0, data[: len(data) // 2]).status_code == 204
        start = threading.Barrier(2)
        answers: list[httpx.Response] = []
        half = len(data) // 2

        def finish(st: Station, location: str, start: threading.Barrier = start, half: int = half) -> None:
            start.wait()
            answers.append(st.patch(location, half, data[half:]))  # noqa: B023  (joined below, in this round)

        threads = [threading.Thread(target=finish, args=(st, loc)) for st, loc in zip(stations, locations, strict=True)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert [a.status_code for a in answers] == [204, 204], [a.text for a in answers]
        assert all(a.headers.get("Custodia-Verified") == "true" for a in answers)
