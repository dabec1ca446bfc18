"""Hostile station traffic: oversized or lying uploads, traversal in metadata, floods, revoked stations."""

from __future__ import annotations

import base64
import os
import uuid
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import select

from custodia_wire import fingerprint
from evidence_server.context import ServerContext
from evidence_server.uploads.models import IntegrityIncident
from tests.security.conftest import UnitStation, count, start_server
from tests.support.databases import SqliteTemplates
from tests.support.live import LiveServer

PATH = "DCIM/20261121/DSJ0001_102345_20261121090000_0001.MP4"


def b64(value: str | bytes) -> str:
    return base64.b64encode(value.encode() if isinstance(value, str) else value).decode()


def metadata(st: UnitStation, data: bytes, **override: str | bytes) -> str:
    fp = fingerprint.of_bytes(data)
    meta: dict[str, str | bytes] = {
        "transfer_id": st.transfer_id,
        "path": PATH,
        "blake3": fp.blake3,
        "sha256": fp.sha256,
    }
    meta.update(override)
    return ",".join(f"{k} {b64(v)}" for k, v in meta.items())


def create(st: UnitStation, length: int, meta: str) -> httpx.Response:
    count("hostile uploads tried")
    return st.http.post("/api/v1/uploads", headers={"Upload-Length": str(length), "Upload-Metadata": meta})


@pytest.fixture(scope="module")
def limited_server(tmp_path_factory: pytest.TempPathFactory, sqlite_templates: SqliteTemplates) -> Iterator[LiveServer]:
    server = start_server(
        tmp_path_factory.mktemp("hostile"),
        sqlite_templates,
        CUSTODIA_MAX_UPLOAD_BYTES="100000",
        CUSTODIA_MAX_REQUEST_BODY_BYTES="200000",
    )
    yield server
    server.stop()


@pytest.fixture
def station(limited_server: LiveServer) -> UnitStation:
    """A station of the test's own (its uploads and incidents are its own) on the shared server."""
    st = UnitStation(limited_server, f"hostile-{uuid.uuid4().hex[:12]}", 1)
    st.open({PATH: b"x" * 1000})
    return st


def test_an_upload_above_the_size_limit_is_refused_with_413(station: UnitStation) -> None:
    data = b"x" * 1000
    r = create(station, 100_001, metadata(station, data))
    assert r.status_code == 413 and r.headers["Tus-Max-Size"] == "100000"
    ok = create(station, len(data), metadata(station, data))
    assert ok.status_code == 201
    more = station.patch(ok.headers["location"], 0, data + b"extra bytes beyond Upload-Length")
    assert more.status_code == 413
    assert station.http.head(ok.headers["location"]).headers["Upload-Offset"] == "0"  # nothing of it kept


TRAVERSALS = [
    "../etc/passwd",
    "/etc/passwd",
    "DCIM/../../../etc/shadow",
    "DCIM/./x.MP4",
    "a\\..\\..\\b.MP4",
    "DCIM/\x00.MP4",
    "DCIM/\x1b[31m.MP4",
    "",
    "A" * 5000,
    "DCIM//x.MP4",
    "..",
    "DCIM/x.MP4/",
    "DCIM/\u202egpm.MP4",
]


@pytest.mark.parametrize("path", TRAVERSALS, ids=range(len(TRAVERSALS)))
def test_metadata_with_an_unsafe_path_is_refused(station: UnitStation, path: str) -> None:
    data = b"x" * 1000
    r = create(station, len(data), metadata(station, data, path=path))
    assert r.status_code == 400, (path, r.status_code, r.text)
    assert "detail" in r.json()


@pytest.mark.parametrize(
    "field,value",
    [
        ("blake3", "blake3:" + "0" * 63),
        ("sha256", "md5:abc"),
        ("transfer_id", "not-a-transfer"),
        ("filename", b"\xff\xfe not utf-8"),
        ("started_at", "yesterday"),
        ("extra", "x"),
    ],
)
def test_malformed_metadata_is_refused(station: UnitStation, field: str, value: str | bytes) -> None:
    data = b"x" * 1000
    r = create(station, len(data), metadata(station, data, **{field: value}))
    assert r.status_code == 400, (field, r.text)


def test_garbage_metadata_headers_are_refused(station: UnitStation) -> None:
    for header in ("transfer_id", "path !!!notbase64", "path " + "A" * 10, ",,,", "path a,path a"):
        r = create(station, 10, header)
        assert r.status_code == 400, (header, r.status_code)
    for length in ("-1", "ten", "1e9", ""):
        count("hostile uploads tried")
        r = station.http.post(
            "/api/v1/uploads", headers={"Upload-Length": length, "Upload-Metadata": metadata(station, b"x")}
        )
        assert r.status_code in (400, 422), (length, r.status_code)


def test_a_wrong_declared_fingerprint_or_a_flipped_byte_voids_the_upload(station: UnitStation) -> None:
    data = os.urandom(5000)
    r = create(station, len(data), metadata(station, data))
    flipped = bytearray(data)
    flipped[1234] ^= 0x01  # a byte flipped in transit
    answer = station.patch(r.headers["location"], 0, bytes(flipped))
    assert answer.status_code == 460 and answer.json()["incident_id"]
    assert station.http.head(r.headers["location"]).status_code == 410
    lying = create(station, len(data), metadata(station, data, blake3=fingerprint.of_bytes(b"other").blake3))
    assert station.patch(lying.headers["location"], 0, data).status_code == 460
    ctx = ServerContext(station.server.settings())
    with ctx.sessionmaker() as session:
        kinds = [
            i.kind
            for i in session.scalars(
                select(IntegrityIncident).where(IntegrityIncident.transfer_id == station.transfer_id)
            )
        ]
    ctx.close()
    assert kinds == ["upload_digest_mismatch"] * 2
    assert station.server.get("/api/v1/recordings", params={"transfer_id": station.transfer_id}).json()["total"] == 0


def test_a_wrong_declared_size_never_becomes_a_recording(station: UnitStation) -> None:
    data = os.urandom(3000)
    short = create(station, len(data) - 1, metadata(station, data))  # declares one byte less than it sends
    assert station.patch(short.headers["location"], 0, data).status_code == 413
    longer = create(station, len(data) + 1, metadata(station, data))  # declares one byte more
    assert station.patch(longer.headers["location"], 0, data).status_code == 204  # waits for the last byte
    receipt = station.complete({PATH: data})
    assert receipt["missing"] == [PATH] and receipt["receipt"]["files"] == []


def test_an_index_with_traversal_or_a_huge_body_is_refused(station: UnitStation) -> None:
    body = {
        "transfer_id": "6f1c5a1e-4d8e-4a53-9d5e-7c1d2a3b4c5d",
        "docked_at": "2026-11-21T10:00:00Z",
        "device": {"serial": "DSJ0001", "family": "folder"},
        "index": [{"path": "../../etc/passwd", "size": 1}],
    }
    count("hostile uploads tried", 2)
    assert station.http.post("/api/v1/transfers", json=body).status_code == 422
    body["index"] = [{"path": f"DCIM/{i:06d}.MP4", "size": 1} for i in range(10_000)]  # > 200 kB of JSON
    r = station.http.post("/api/v1/transfers", json=body)
    assert r.status_code == 413

    def chunks():  # no Content-Length: the cap still holds while the body streams in
        yield b'{"transfer_id": "x", "index": ['
        for _ in range(8000):
            yield b'{"path": "DCIM/0000000.MP4", "size": 1},'
        yield b"]}"

    count("hostile uploads tried")
    r = station.http.post("/api/v1/transfers", content=chunks(), headers={"Content-Type": "application/json"})
    assert r.status_code == 413


def test_upload_creation_is_rate_limited_per_station(server_with) -> None:
    server = server_with(CUSTODIA_UPLOAD_CREATES_PER_MINUTE="5", CUSTODIA_MAX_OPEN_UPLOADS="100")
    st = UnitStation(server, "flooding-station", 1)
    st.open({PATH: b"x"})
    codes = [create(st, 1, metadata(st, b"x")).status_code for _ in range(7)]
    assert codes == [201] * 5 + [429] * 2
    r = create(st, 1, metadata(st, b"x"))
    assert int(r.headers["Retry-After"]) >= 1
    other = UnitStation(server, "quiet-station", 1)  # the limit is per station
    other.open({PATH: b"x"})
    assert create(other, 1, metadata(other, b"x")).status_code == 201


def test_unfinished_uploads_per_station_are_capped(server_with) -> None:
    server = server_with(CUSTODIA_MAX_OPEN_UPLOADS="3")
    st = UnitStation(server, "hoarding-station", 1)
    st.open({PATH: b"x"})
    made = [create(st, 10, metadata(st, b"x" * 10)) for _ in range(4)]
    assert [r.status_code for r in made] == [201, 201, 201, 429]
    assert st.http.delete(made[0].headers["location"]).status_code == 204  # terminating one frees a place
    assert create(st, 10, metadata(st, b"x" * 10)).status_code == 201
