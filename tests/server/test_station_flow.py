"""The station side of a transfer, through the real HTTP API, on SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import uuid

import httpx
import pytest

from custodia_wire import documents, fingerprint
from tests.support.live import LiveServer


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


class Station:
    """A minimal station client written from docs/station-api.md, independent of ingest_agent."""

    def __init__(self, server: LiveServer, name: str = "station-1") -> None:
        self.server = server
        r = httpx.post(server.url + "/api/v1/stations/enrol", json={"code": server.enrolment_code(name)})
        r.raise_for_status()
        self.enrolment = r.json()
        self.key = documents.load_public_key_b64(self.enrolment["server_public_key"])
        self.http = httpx.Client(
            base_url=server.url,
            timeout=30,
            headers={"Authorization": f"Bearer {self.enrolment['token']}", "Tus-Resumable": "1.0.0"},
        )

    def open(self, files: dict[str, bytes], serial: str = "DSJ0001", officer: str = "102345") -> dict:
        self.transfer_id = str(uuid.uuid4())
        self.serial = serial
        r = self.http.post(
            "/api/v1/transfers",
            json={
                "transfer_id": self.transfer_id,
                "docked_at": "2026-11-21T10:00:00Z",
                "device": {"serial": serial, "family": "folder"},
                "officer": {"number": officer, "name": "张三"},
                "device_status": {
                    "clock": "2026-11-21T10:00:03Z",
                    "read_at": "2026-11-21T10:00:00Z",
                    "battery_percent": 77,
                },
                "index": [
                    {"path": p, "size": len(d), "mtime": "2026-11-21T09:00:00Z", "started_at": "2026-11-21T01:00:00Z"}
                    for p, d in files.items()
                ],
            },
        )
        assert r.status_code == 201, r.text
        return r.json()

    def create_upload(
        self, path: str, data: bytes, fp: fingerprint.Fingerprint | None = None, **extra: str
    ) -> httpx.Response:
        fp = fp or fingerprint.of_bytes(data)
        meta = {"transfer_id": self.transfer_id, "path": path, "blake3": fp.blake3, "sha256": fp.sha256, **extra}
        return self.http.post(
            "/api/v1/uploads",
            headers={
                "Upload-Length": str(len(data)),
                "Upload-Metadata": ",".join(f"{k} {b64(v)}" for k, v in meta.items()),
            },
        )

    def patch(self, location: str, offset: int, body: bytes) -> httpx.Response:
        return self.http.patch(
            location,
            content=body,
            headers={"Upload-Offset": str(offset), "Content-Type": "application/offset+octet-stream"},
        )

    def upload(self, path: str, data: bytes) -> httpx.Response:
        r = self.create_upload(path, data)
        assert r.status_code == 201, r.text
        return self.patch(r.headers["location"], 0, data)

    def complete(self, files: dict[str, bytes]) -> dict:
        manifest = documents.Manifest(
            transfer_id=self.transfer_id,
            station={"id": self.enrolment["station_id"]},
            device={"serial": self.serial},
            officer={"number": "102345"},
            docked_at="2026-11-21T10:00:00Z",
            files=[
                documents.ManifestFile(
                    path=p, size=len(d), blake3=fingerprint.of_bytes(d).blake3, sha256=fingerprint.of_bytes(d).sha256
                )
                for p, d in files.items()
            ],
        )
        r = self.http.post(f"/api/v1/transfers/{self.transfer_id}/complete", json=manifest.to_dict())
        assert r.status_code == 200, r.text
        return r.json()


FILES = {
    "DCIM/20261121/DSJ0001_102345_20261121090000_0001.MP4": b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 400,
    "DCIM/20261121/DSJ0001_102345_20261121090500_0002.MP4": b"second segment" * 1000,
}


def test_dock_upload_complete_gives_signed_receipt(live_server_any_db: LiveServer) -> None:
    st = Station(live_server_any_db)
    opened = st.open(FILES)
    assert opened["already_held"] == [] and opened["vanished"] == []
    for path, data in FILES.items():
        r = st.upload(path, data)
        assert r.status_code == 204 and r.headers["Custodia-Verified"] == "true"
    out = st.complete(FILES)
    assert out["missing"] == []
    confirmed = documents.confirmed_files(out["receipt"], st.key)
    assert set(confirmed) == set(FILES)
    for path, data in FILES.items():
        assert confirmed[path]["blake3"] == fingerprint.of_bytes(data).blake3

    listing = live_server_any_db.get("/api/v1/recordings").json()
    assert listing["total"] == 2
    rec = next(i for i in listing["items"] if i["original_path"].endswith("0001.MP4"))
    assert rec["device_serial"] == "DSJ0001" and rec["officer_no"] == "102345"
    assert rec["name_started_at"].startswith("2026-11-21T01:00:00")
    body = live_server_any_db.get(f"/api/v1/recordings/{rec['id']}/content").content
    assert body == FILES[rec["original_path"]]


def test_receipt_forgery_is_detected(live_server: LiveServer) -> None:
    st = Station(live_server)
    st.open(FILES)
    for path, data in FILES.items():
        st.upload(path, data)
    receipt = st.complete(FILES)["receipt"]
    receipt["files"][0]["blake3"] = "blake3:" + "0" * 64
    with pytest.raises(documents.DocumentError):
        documents.confirmed_files(receipt, st.key)


def test_upload_resumes_from_server_offset(live_server: LiveServer) -> None:
    st = Station(live_server)
    path, data = next(iter(FILES.items()))
    st.open({path: data})
    loc = st.create_upload(path, data).headers["location"]
    assert st.patch(loc, 0, data[:1000]).headers["Upload-Offset"] == "1000"
    assert st.http.head(loc).headers["Upload-Offset"] == "1000"
    stale = st.patch(loc, 0, data)
    assert stale.status_code == 409 and stale.headers["Upload-Offset"] == "1000"
    done = st.patch(loc, 1000, data[1000:])
    assert done.status_code == 204 and done.headers["Custodia-Verified"] == "true"


def test_corrupted_bytes_are_rejected_and_recorded(live_server: LiveServer) -> None:
    st = Station(live_server)
    path, data = next(iter(FILES.items()))
    st.open({path: data})
    loc = st.create_upload(path, data).headers["location"]
    flipped = bytearray(data)
    flipped[500] ^= 0x01
    r = st.patch(loc, 0, bytes(flipped))
    assert r.status_code == 460 and r.json()["incident_id"]
    assert st.http.head(loc).status_code == 410
    assert live_server.get("/api/v1/recordings").json()["total"] == 0
    out = st.complete({path: data})
    assert out["missing"] == [path] and out["receipt"]["files"] == []


def test_same_bytes_are_stored_once_and_redock_skips_them(live_server: LiveServer) -> None:
    st = Station(live_server)
    st.open(FILES)
    for path, data in FILES.items():
        st.upload(path, data)
    st.complete(FILES)
    again = st.open(FILES)
    assert {h["path"] for h in again["already_held"]} == set(FILES)
    objects = [p for p in (live_server.data_dir / "objects").rglob("*") if p.is_file()]
    assert len(objects) == 2
    # completing the re-dock confirms the held files without any new upload
    out = st.complete(FILES)
    assert out["missing"] == [] and len(out["receipt"]["files"]) == 2


def test_file_gone_from_device_without_transfer_is_recorded(live_server: LiveServer) -> None:
    st = Station(live_server)
    st.open(FILES)  # first dock: seen, never uploaded
    first, second = FILES.items()
    later = st.open(dict([second]))
    assert later["vanished"] == [first[0]]


@pytest.mark.parametrize(
    "path",
    [
        "../etc/passwd",
        "DCIM/../../x.MP4",
        "/abs.MP4",
        "DCIM/a\x00b.MP4",
        "DCIM/" + "x" * 300 + ".MP4",
        "DCIM\\win.MP4",
        "",
    ],
)
def test_hostile_paths_are_refused(live_server: LiveServer, path: str) -> None:
    st = Station(live_server)
    st.open({"DCIM/ok.MP4": b"ok"})
    r = st.create_upload(path, b"data")
    assert r.status_code == 400
    assert r.json()["detail"]


def test_naive_timestamps_in_the_index_are_refused(live_server: LiveServer) -> None:
    st = Station(live_server)
    r = st.http.post(
        "/api/v1/transfers",
        json={
            "transfer_id": str(uuid.uuid4()),
            "docked_at": "2026-11-21T10:00:00Z",
            "device": {"serial": "DSJ0001", "family": "folder"},
            "index": [{"path": "DCIM/a.MP4", "size": 1, "mtime": "2026-11-21T09:00:00"}],
        },
    )
    assert r.status_code == 422 and "time zone" in r.text


def test_malformed_upload_requests(live_server: LiveServer) -> None:
    st = Station(live_server)
    st.open({"DCIM/ok.MP4": b"ok"})
    fp = fingerprint.of_bytes(b"ok")
    assert st.create_upload("DCIM/ok.MP4", b"ok", blake3="md5:abc").status_code == 400
    assert st.create_upload("DCIM/ok.MP4", b"ok", transfer_id=str(uuid.uuid4())).status_code == 400
    bad_b64 = st.http.post("/api/v1/uploads", headers={"Upload-Length": "2", "Upload-Metadata": "path %%%"})
    assert bad_b64.status_code == 400
    no_version = httpx.post(
        live_server.url + "/api/v1/uploads",
        headers={"Authorization": st.http.headers["Authorization"], "Upload-Length": "2"},
    )
    assert no_version.status_code == 412
    loc = st.create_upload("DCIM/ok.MP4", b"ok", fp).headers["location"]
    too_long = st.patch(loc, 0, b"okay")
    assert too_long.status_code == 413


def test_zero_length_recording_is_accepted(live_server: LiveServer) -> None:
    st = Station(live_server)
    st.open({"DCIM/empty.MP4": b""})
    r = st.upload("DCIM/empty.MP4", b"")
    assert r.status_code == 204 and r.headers["Custodia-Verified"] == "true"


def test_revoked_station_is_refused(live_server: LiveServer) -> None:
    st = Station(live_server)
    r = httpx.post(
        live_server.url + f"/api/v1/stations/{st.enrolment['station_id']}/revoke", headers=live_server.admin_headers
    )
    assert r.status_code == 204
    r = st.http.post("/api/v1/transfers", json={})
    assert r.status_code == 401


def test_enrolment_code_is_single_use(live_server: LiveServer) -> None:
    code = live_server.enrolment_code("station-x")
    assert httpx.post(live_server.url + "/api/v1/stations/enrol", json={"code": code}).status_code == 201
    assert httpx.post(live_server.url + "/api/v1/stations/enrol", json={"code": code}).status_code == 403


def test_server_killed_mid_upload_resumes(live_server_process: LiveServer) -> None:
    server = live_server_process
    st = Station(server)
    path, data = "DCIM/big.MP4", bytes(range(256)) * 40_000
    st.open({path: data})
    loc = st.create_upload(path, data).headers["location"]
    assert st.patch(loc, 0, data[:3_000_000]).status_code == 204
    server.kill()
    server.start()
    offset = int(st.http.head(loc).headers["Upload-Offset"])
    assert offset == 3_000_000
    r = st.patch(loc, offset, data[offset:])
    assert r.status_code == 204 and r.headers["Custodia-Verified"] == "true"
    assert st.complete({path: data})["missing"] == []


def test_an_upload_whose_creation_answer_was_lost_is_superseded(live_server: LiveServer) -> None:
    """A POST whose answer never arrived (API process killed) leaves an upload the station never
    learns of; once the station's second upload of the same file verifies, the first is void and
    its staged bytes are gone."""
    st = Station(live_server)
    path, data = next(iter(FILES.items()))
    st.open({path: data})
    lost = st.create_upload(path, data).headers["location"]
    assert st.patch(lost, 0, data[:700]).status_code == 204  # some bytes staged before the "crash"
    staging = live_server.settings().staging_dir
    assert len(list(staging.glob("*.part"))) == 1
    assert st.upload(path, data).headers["Custodia-Verified"] == "true"
    assert list(staging.glob("*.part")) == []
    assert st.http.head(lost).status_code == 410
    assert st.patch(lost, 700, data[700:]).status_code == 410
    events = live_server.get("/api/v1/audit/entries", params={"action": "recording.verified"}).json()["items"]
    assert events[0]["details"]["superseded_uploads"] == [lost.rsplit("/", 1)[1]]


def test_idle_uploads_expire_and_orphaned_staging_is_removed(live_server: LiveServer) -> None:
    import os
    import time

    from evidence_server.context import ServerContext
    from evidence_server.uploads.expiry import expire_uploads

    st = Station(live_server)
    (idle_path, idle_data), (busy_path, busy_data) = FILES.items()
    st.open(FILES)
    idle = st.create_upload(idle_path, idle_data).headers["location"]
    st.patch(idle, 0, idle_data[:1000])
    busy = st.create_upload(busy_path, busy_data).headers["location"]
    st.patch(busy, 0, busy_data[:1000])
    settings = live_server.settings()
    staging = settings.staging_dir
    idle_part = staging / (idle.rsplit("/", 1)[1] + ".part")
    orphan = staging / ("f" * 32 + ".part")  # a POST killed before its row was committed
    orphan.write_bytes(b"x" * 10)
    fresh_orphan = staging / ("e" * 32 + ".part")
    fresh_orphan.write_bytes(b"y")
    old = time.time() - 73 * 3600
    os.utime(idle_part, (old, old))
    os.utime(orphan, (old, old))

    ctx = ServerContext(settings)
    try:
        report = expire_uploads(ctx)
    finally:
        ctx.close()
    assert report.expired == [idle.rsplit("/", 1)[1]] and report.orphan_files == [orphan.name]
    assert report.bytes_freed == 1010
    assert not idle_part.exists() and not orphan.exists() and fresh_orphan.exists()
    assert st.http.head(idle).status_code == 410
    assert st.http.head(busy).headers["Upload-Offset"] == "1000"  # the active one goes on
    assert st.patch(busy, 1000, busy_data[1000:]).headers["Custodia-Verified"] == "true"
    # the station starts the expired one again and it verifies
    assert st.upload(idle_path, idle_data).headers["Custodia-Verified"] == "true"
    expired = live_server.get("/api/v1/audit/entries", params={"action": "upload.expired"}).json()["items"]
    assert [e["object"]["id"] for e in expired] == [idle.rsplit("/", 1)[1]]


def test_an_upload_row_without_staged_bytes_is_restarted_and_then_superseded(live_server: LiveServer) -> None:
    """A crash after the upload's row is committed but before its staging file exists: the station is
    told its bytes are lost, starts a fresh upload, and the orphaned row is void once that verifies."""
    st = Station(live_server)
    path, data = next(iter(FILES.items()))
    st.open({path: data})
    lost = st.create_upload(path, data).headers["location"]
    staged = live_server.settings().staging_dir / (lost.rsplit("/", 1)[1] + ".part")
    staged.unlink()  # as if the process died right after its commit
    r = st.patch(lost, 0, data)
    assert r.status_code == 409 and "Upload-Offset" not in r.headers and "start a new upload" in r.text
    assert st.upload(path, data).headers["Custodia-Verified"] == "true"
    assert st.http.head(lost).status_code == 410
    assert list(live_server.settings().staging_dir.glob("*.part")) == []
